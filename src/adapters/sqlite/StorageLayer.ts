/**
 * Persistence assembled (SPEC §5): the SQLite database and the master key, and on them the backend
 * registry, persisted cooldowns, the usage ledger and its reports, around the in-memory FleetStore.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Context, type Duration, Effect, Layer, Option, type Scope } from "effect"
import { FleetStore } from "../../domain/ports/FleetStore.js"
import { BackendRegistry } from "../../domain/ports/BackendRegistry.js"
import { UsageLog } from "../../domain/ports/UsageLog.js"
import { UsageReports } from "../../domain/ports/UsageReports.js"
import { Policy } from "../../domain/Policy.js"
import { AppConfig } from "../config/ConfigFile.js"
import type { Env } from "../config/Interpolate.js"
import { ReadinessChecks } from "../http/HttpRoutes.js"
import * as FleetStoreMemory from "../memory/FleetStoreMemory.js"
import * as KeyCipher from "../secrets/KeyCipher.js"
import * as MasterKey from "../secrets/MasterKey.js"
import * as BackendRegistrySqlite from "./BackendRegistrySqlite.js"
import type { StoredBackendInvalid } from "./BackendRows.js"
import * as CooldownPersistence from "./CooldownPersistence.js"
import * as Database from "./Database.js"
import * as KeyCheck from "./KeyCheck.js"
import * as UsageLedger from "./UsageLedger.js"
import * as UsageReportsSqlite from "./UsageReportsSqlite.js"
import * as UsageRetention from "./UsageRetention.js"

/** Why storage did not start. Each message names what to fix; none contains a key. */
export type StorageStartupError =
  | Database.StorageUnavailable
  | MasterKey.MasterKeyInvalid
  | MasterKey.MasterKeyMismatch
  | StoredBackendInvalid

/** The tags of StorageStartupError, for `Effect.catchTags` at the entry point. */
export const startupErrorTags = ["StorageUnavailable", "MasterKeyInvalid", "MasterKeyMismatch", "StoredBackendInvalid"] as const

export type StorageServices = FleetStore | UsageLog | BackendRegistry | UsageReports | ReadinessChecks

export interface StorageOptions {
  /** Where SIDECAR_MASTER_KEY is read from. */
  readonly env: Env
  readonly ledger?: UsageLedger.LedgerOptions
  /** When and how usage rows are pruned (default: `storage.usage_retention_days`, hourly). */
  readonly retention?: UsageRetention.RetentionOptions
  /** How often cooldown changes are written (default 1 s). */
  readonly cooldownSnapshot?: Duration.DurationInput
}

const sqlReason = (e: SqlError.SqlError) => {
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : ""
  return `${e.message}${cause}`
}

/**
 * Opens everything in the current scope, in order: database (migrated), master key, check value,
 * backends (config upserted, stored keys decrypted, published to the FleetStore), cooldowns
 * restored, then the background writers and the usage pruner. Closing the scope stops them,
 * writes the last cooldown snapshot, drains the usage queue, then closes the database.
 */
export const make = (options: StorageOptions): Effect.Effect<
  Context.Context<StorageServices>,
  StorageStartupError,
  AppConfig | Policy | Scope.Scope
> =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const policy = yield* Policy
    const database = config.storage.sqlite
    const client = yield* Database.open(database)
    const keyFile = Database.isMemory(database) ? undefined : MasterKey.keyFileBeside(database)
    const master = yield* MasterKey.load({ env: options.env, keyFile })
    const fleet = yield* FleetStoreMemory.make([], policy)
    const services = Context.make(SqlClient.SqlClient, client).pipe(
      Context.add(KeyCipher.KeyCipher, KeyCipher.make(master)),
      Context.add(FleetStore, fleet)
    )
    const { registry, reports, usage } = yield* Effect.gen(function*() {
      yield* KeyCheck.verify({ database, keySource: master.source })
      const registry = yield* BackendRegistrySqlite.make({
        configBackends: config.backends,
        database,
        keySource: master.source
      })
      yield* CooldownPersistence.start({ interval: options.cooldownSnapshot ?? "1 second" })
      const usage = config.storage.usageLedger
        ? yield* UsageLedger.make(options.ledger ?? UsageLedger.defaultOptions, Database.isMemory(database) ? undefined : database)
        : UsageLog.of({ record: () => Effect.void })
      yield* UsageRetention.start(options.retention ?? UsageRetention.defaultOptions(config.storage.usageRetentionDays))
      const reports = yield* UsageReportsSqlite.make
      return { registry, reports, usage }
    }).pipe(
      Effect.provide(services),
      Effect.catchTag("SqlError", (e) => Effect.fail(new Database.StorageUnavailable({ path: database, reason: sqlReason(e) })))
    )
    const storageAnswers = client`SELECT 1`.pipe(
      Effect.timeout("2 seconds"),
      Effect.as(Option.none<string>()),
      Effect.catchAllCause(() => Effect.succeed(Option.some("storage: the database does not answer")))
    )
    yield* Effect.logInfo("storage ready").pipe(Effect.annotateLogs({ database, master_key: master.source }))
    return Context.make(FleetStore, fleet).pipe(
      Context.add(BackendRegistry, registry),
      Context.add(UsageLog, usage),
      Context.add(UsageReports, reports),
      Context.add(ReadinessChecks, [storageAnswers])
    )
  })

/** Storage with the master key read from `options.env`. */
export const layerWith = (options: StorageOptions): Layer.Layer<StorageServices, StorageStartupError, AppConfig | Policy> =>
  Layer.scopedContext(make(options))

/** Storage with SIDECAR_MASTER_KEY from the process environment. */
export const layer: Layer.Layer<StorageServices, StorageStartupError, AppConfig | Policy> = layerWith({ env: process.env })
