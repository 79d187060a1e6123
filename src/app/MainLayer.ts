/**
 * The production wiring: config → storage (fleet, registry, ledger) → upstream, events → HTTP
 * server with its extra routes. The only place that chooses implementations for the ports.
 */
import { Effect, Layer, Logger } from "effect"
import { AppConfig } from "../adapters/config/ConfigFile.js"
import { toLogLevel } from "../adapters/config/SidecarConfig.js"
import * as AdminApi from "../adapters/http/AdminApi.js"
import { HttpRoutes } from "../adapters/http/HttpRoutes.js"
import * as ProxyServer from "../adapters/http/ProxyServer.js"
import * as StorageLayer from "../adapters/sqlite/StorageLayer.js"
import * as JsonLogger from "../adapters/telemetry/JsonLogger.js"
import * as MetricsAndLogs from "../adapters/telemetry/MetricsAndLogs.js"
import * as OtelEnv from "../adapters/telemetry/OtelEnv.js"
import * as Telemetry from "../adapters/telemetry/Telemetry.js"
import * as UndiciUpstream from "../adapters/upstream/UndiciUpstream.js"
import type { Backend } from "../domain/Backend.js"
import { FleetStore, type FleetStoreShape } from "../domain/ports/FleetStore.js"
import { LifecycleEvents } from "../domain/ports/LifecycleEvents.js"

/**
 * Models named in some backend's `models` map may be label values; anything else is "other".
 * The set follows the fleet (admin changes included), rebuilt only when the backend list changes.
 */
const modelLabeler = (fleet: FleetStoreShape): MetricsAndLogs.ModelLabeler => {
  let seen: ReadonlyArray<Backend> | undefined
  let names = new Set<string>()
  return (model) =>
    Effect.map(fleet.state, ({ backends }) => {
      if (backends !== seen) {
        seen = backends
        names = new Set(backends.flatMap((b) => Object.keys(b.models ?? {})))
      }
      return names.has(model) ? model : "other"
    })
}

const eventsLayer = Layer.effect(
  LifecycleEvents,
  Effect.gen(function*() {
    const fleet = yield* FleetStore
    const config = yield* AppConfig
    return MetricsAndLogs.make(modelLabeler(fleet), toLogLevel(config.logging.level))
  })
)

/** Everything below the HTTP server, from a loaded config. */
export const coreLayer = Layer.mergeAll(eventsLayer, UndiciUpstream.layer).pipe(
  Layer.provideMerge(StorageLayer.layer)
)

/** Routes beside the proxy: the admin API and `/metrics` (with the metrics export it serves). */
const routesLayer = (t: OtelEnv.TelemetrySettings) =>
  Layer.scoped(
    HttpRoutes,
    Effect.map(Effect.all([AdminApi.makeAdminRoute, Telemetry.routes(t)]), ([admin, metrics]) => [admin, ...metrics])
  )

export const serverLayer = (t: OtelEnv.TelemetrySettings) => Layer.unwrapEffect(Effect.map(AppConfig, (config) =>
  ProxyServer.layer({
    host: config.server.host,
    port: config.server.port,
    maxBodyBytes: config.server.maxBodyBytes,
    shutdownGraceMs: config.server.shutdownGraceMs,
    proxyKeys: config.security.proxyKeys,
    exhaustedShouldRetry: config.routing.exhaustedShouldRetry
  })
)).pipe(Layer.provide(routesLayer(t)))

/** JSON log lines on stdout at the configured level (SPEC §8). */
export const loggerLayer = Layer.unwrapEffect(Effect.map(AppConfig, (config) =>
  Layer.merge(JsonLogger.layer, Logger.minimumLogLevel(toLogLevel(config.logging.level)))
))

/**
 * The whole app, given AppConfig and Policy (from the config file, or from a test). `env` holds
 * the OTEL_* variables: process.env for `npm start`, whatever a test passes otherwise.
 */
export const appLayer = (env: OtelEnv.Env = {}) => {
  const t = OtelEnv.fromEnv(env)
  return serverLayer(t).pipe(
    Layer.provideMerge(Telemetry.tracing(t)), // below the server, so its runtime carries the tracer
    Layer.provideMerge(coreLayer),
    Layer.provideMerge(loggerLayer)
  )
}
