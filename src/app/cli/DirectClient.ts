/**
 * The CLI without `--url`: the same admin operations run in-process against storage, through the
 * BackendRegistry and UsageReports ports. The storage Layer is loaded lazily from the SQLite adapter.
 */
import { Context, Effect, Either, Exit, Layer, Logger, LogLevel, Scope } from "effect"
import { existsSync } from "node:fs"
import * as ConfigFile from "../../adapters/config/ConfigFile.js"
import { toPolicy } from "../../adapters/config/SidecarConfig.js"
import { createBackend, listBackends, patchBackend, removeBackend } from "../../adapters/http/AdminBackends.js"
import type { AdminFailure } from "../../adapters/http/AdminInput.js"
import { usageReport } from "../../adapters/http/AdminUsage.js"
import * as FleetStoreMemory from "../../adapters/memory/FleetStoreMemory.js"
import { Policy } from "../../domain/Policy.js"
import { BackendRegistry } from "../../domain/ports/BackendRegistry.js"
import type { FleetStore } from "../../domain/ports/FleetStore.js"
import { UsageReports } from "../../domain/ports/UsageReports.js"
import type { AdminClient } from "./AdminClient.js"
import { CliError } from "./Args.js"

/**
 * What direct mode needs from storage. It may also require a FleetStore (to apply changes to);
 * a private in-memory one is given, so no live state is shown (the CLI is not the running server).
 */
export type StorageLayer = Layer.Layer<BackendRegistry | UsageReports, unknown, ConfigFile.AppConfig | Policy | FleetStore>

export type StorageLoader = () => Promise<StorageLayer>

const STORAGE_MODULE = "src/adapters/sqlite/StorageLayer.ts"

const useUrl = "Use --url http://host:port (with --token or SIDECAR_ADMIN_TOKEN) to manage a running Sidecar through its admin API."

/** Imports `layer` from the SQLite adapter; a missing or broken module is a clear CliError. */
export const loadSqliteStorage: StorageLoader = async () => {
  // A computed specifier: the module is optional at build time and only loaded in direct mode.
  const specifier = new URL("../../adapters/sqlite/StorageLayer.js", import.meta.url).href
  let mod: { readonly layer?: unknown }
  try {
    mod = (await import(specifier)) as { readonly layer?: unknown }
  } catch (e) {
    const reason = (e as { code?: unknown }).code === "ERR_MODULE_NOT_FOUND" ? "module not found" : e instanceof Error ? e.message : String(e)
    throw new CliError(`direct database access is not available: cannot load ${STORAGE_MODULE} (${reason}).\n${useUrl}`)
  }
  if (!Layer.isLayer(mod.layer)) throw new CliError(`direct database access is not available: ${STORAGE_MODULE} exports no \`layer\`.\n${useUrl}`)
  return mod.layer as StorageLayer
}

/** Warnings (e.g. a master key file created) go to stderr; nothing else is logged. */
const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )

type Services = ConfigFile.AppConfig | Policy | BackendRegistry | UsageReports

/**
 * Opens storage from the config file named by `env` (SIDECAR_CONFIG, SIDECAR_DB, …). The database
 * must exist already: a CLI run in the wrong directory must not create an empty one (and a new key).
 */
export const directClient = async (env: ConfigFile.Env, load: StorageLoader = loadSqliteStorage): Promise<AdminClient> => {
  const storage = await load()
  const loaded = await Effect.runPromise(Effect.either(ConfigFile.load(env)))
  if (Either.isLeft(loaded)) throw new CliError(`${loaded.left.message}\n${useUrl}`)
  const config = loaded.right
  const database = config.storage.sqlite
  if (database !== ":memory:" && !existsSync(database)) {
    throw new CliError(`no database at ${database} (storage.sqlite in the config file, or SIDECAR_DB).\n${useUrl}`)
  }
  const configContext = Context.make(ConfigFile.AppConfig, config).pipe(Context.add(Policy, toPolicy(config)))
  const layer = storage.pipe(Layer.provide(FleetStoreMemory.layer([])), Layer.provide(Layer.succeedContext(configContext)))
  const scope = Effect.runSync(Scope.make())
  const built = await Effect.runPromise(Effect.either(quiet(Layer.buildWithScope(layer, scope))))
  if (Either.isLeft(built)) {
    await Effect.runPromise(quiet(Scope.close(scope, Exit.void)))
    const e = built.left
    throw new CliError(`cannot open storage: ${e instanceof Error ? e.message : String(e)}\n${useUrl}`)
  }
  // Only the ports: a FleetStore the storage may hold is not the running server's live state.
  const context: Context.Context<Services> = Context.merge(configContext, Context.pick(BackendRegistry, UsageReports)(built.right))
  const run = async <A>(effect: Effect.Effect<A, AdminFailure, Services>): Promise<A> => {
    const result = await Effect.runPromise(Effect.either(quiet(Effect.provide(effect, context))))
    if (Either.isLeft(result)) throw new CliError(result.left.message)
    return result.right
  }
  return {
    listBackends: () => run(Effect.map(listBackends, (r) => r.backends)),
    createBackend: (body) => run(createBackend(body)),
    patchBackend: (id, patch) => run(patchBackend(id, patch)),
    removeBackend: (id) => run(removeBackend(id)),
    usage: (params) => run(usageReport(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined))),
    close: () => Effect.runPromise(quiet(Scope.close(scope, Exit.void)))
  }
}
