/**
 * A whole Sidecar on 127.0.0.1 with the admin route mounted, backends in memory (no storage) and
 * usage from an array: the production server, upstream and fleet layers, wired here (not MainLayer).
 */
import { Context, Effect, Either, Exit, Layer, Logger, LogLevel, Scope } from "effect"
import { stringify } from "yaml"
import { AppConfig, parse } from "../../src/adapters/config/ConfigFile.js"
import { toPolicy } from "../../src/adapters/config/SidecarConfig.js"
import * as AdminApi from "../../src/adapters/http/AdminApi.js"
import * as ProxyServer from "../../src/adapters/http/ProxyServer.js"
import * as BackendRegistryMemory from "../../src/adapters/memory/BackendRegistryMemory.js"
import * as FleetStoreMemory from "../../src/adapters/memory/FleetStoreMemory.js"
import * as MetricsAndLogs from "../../src/adapters/telemetry/MetricsAndLogs.js"
import * as UndiciUpstream from "../../src/adapters/upstream/UndiciUpstream.js"
import type { AttemptRecord } from "../../src/domain/Attempt.js"
import { Policy } from "../../src/domain/Policy.js"
import { FleetStore, type FleetStoreShape } from "../../src/domain/ports/FleetStore.js"
import { UsageLog } from "../../src/domain/ports/UsageLog.js"
import type { UsageQuery } from "../../src/domain/ports/UsageReports.js"
import * as UsageReportsMemory from "./UsageReportsMemory.js"

export interface AdminSidecar {
  readonly url: string
  readonly fleet: FleetStoreShape
  /** Queries the usage fake received. */
  readonly usageQueries: ReadonlyArray<UsageQuery>
  readonly stop: () => Promise<void>
}

/** `config` is the YAML shape; logging is off, the port is a free one. */
export const startAdminSidecar = async (
  config: Record<string, unknown>,
  records: ReadonlyArray<AttemptRecord> = []
): Promise<AdminSidecar> => {
  const parsed = parse(stringify(config), {}, "test config")
  if (Either.isLeft(parsed)) throw parsed.left
  const decoded = parsed.right
  const usageQueries: Array<UsageQuery> = []
  const admin = AdminApi.layer.pipe(
    Layer.provide(BackendRegistryMemory.layer),
    Layer.provide(UsageReportsMemory.layer(records, usageQueries))
  )
  const server = ProxyServer.layer({
    host: "127.0.0.1",
    port: 0,
    maxBodyBytes: decoded.server.maxBodyBytes,
    shutdownGraceMs: 1000,
    proxyKeys: decoded.security.proxyKeys,
    exhaustedShouldRetry: false
  })
  const core = Layer.mergeAll(
    FleetStoreMemory.layer(decoded.backends),
    UndiciUpstream.layer,
    MetricsAndLogs.layer((model) => Effect.succeed(model)),
    Layer.succeed(UsageLog, UsageLog.of({ record: () => Effect.void })),
    Logger.minimumLogLevel(LogLevel.None)
  )
  const layer = server.pipe(
    Layer.provide(admin),
    Layer.provideMerge(core),
    Layer.provideMerge(Layer.succeedContext(Context.make(AppConfig, decoded).pipe(Context.add(Policy, toPolicy(decoded)))))
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  return {
    url: Context.get(context, ProxyServer.HttpAddress).url,
    fleet: Context.get(context, FleetStore),
    usageQueries,
    stop: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
