/**
 * The production wiring: config → policy and fleet → upstream, events, usage → HTTP server.
 * The only place that chooses implementations for the domain's ports.
 */
import { Effect, Layer, Logger } from "effect"
import * as JsonLogger from "../adapters/telemetry/JsonLogger.js"
import { AppConfig } from "../adapters/config/ConfigFile.js"
import { toLogLevel } from "../adapters/config/SidecarConfig.js"
import * as ProxyServer from "../adapters/http/ProxyServer.js"
import * as FleetStoreMemory from "../adapters/memory/FleetStoreMemory.js"
import * as MetricsAndLogs from "../adapters/telemetry/MetricsAndLogs.js"
import * as UndiciUpstream from "../adapters/upstream/UndiciUpstream.js"
import { UsageLog } from "../domain/ports/UsageLog.js"

/** Until the SQLite ledger lands, usage records are dropped (their metrics are still counted). */
const UsageLogNone = Layer.succeed(UsageLog, UsageLog.of({ record: () => Effect.void }))

/** Models named in some backend's `models` map may be label values; anything else is "other". */
const modelLabeler = (names: ReadonlySet<string>) => (model: string) => (names.has(model) ? model : "other")

/** Everything below the HTTP server, from a loaded config. */
export const coreLayer = Layer.unwrapEffect(Effect.gen(function*() {
  const config = yield* AppConfig
  const models = new Set(config.backends.flatMap((b) => Object.keys(b.models ?? {})))
  return Layer.mergeAll(
    FleetStoreMemory.layer(config.backends),
    UndiciUpstream.layer,
    MetricsAndLogs.layer(modelLabeler(models)),
    UsageLogNone
  )
}))

export const serverLayer = Layer.unwrapEffect(Effect.map(AppConfig, (config) =>
  ProxyServer.layer({
    host: config.server.host,
    port: config.server.port,
    maxBodyBytes: config.server.maxBodyBytes,
    shutdownGraceMs: config.server.shutdownGraceMs,
    proxyKeys: config.security.proxyKeys,
    exhaustedShouldRetry: config.routing.exhaustedShouldRetry
  })
))

/** JSON log lines on stdout at the configured level (SPEC §8). */
export const loggerLayer = Layer.unwrapEffect(Effect.map(AppConfig, (config) =>
  Layer.merge(JsonLogger.layer, Logger.minimumLogLevel(toLogLevel(config.logging.level)))
))

/** The whole app, given AppConfig and Policy (from the config file, or from a test). */
export const appLayer = serverLayer.pipe(Layer.provideMerge(coreLayer), Layer.provideMerge(loggerLayer))
