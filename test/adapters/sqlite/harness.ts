/**
 * Test harness for the SQLite storage: configs on temp database files, the storage layer opened
 * in its own scope (closed like a shutdown), logs captured, and direct queries on a file.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { Cause, Context, Effect, Either, Exit, Layer, Logger, Option, Redacted, Scope } from "effect"
import { stringify } from "yaml"
import { AppConfig, parse } from "../../../src/adapters/config/ConfigFile.js"
import type { Env } from "../../../src/adapters/config/Interpolate.js"
import { type SidecarConfig, toPolicy } from "../../../src/adapters/config/SidecarConfig.js"
import * as Database from "../../../src/adapters/sqlite/Database.js"
import * as StorageLayer from "../../../src/adapters/sqlite/StorageLayer.js"
import type { AttemptRecord } from "../../../src/domain/Attempt.js"
import type { BackendInput } from "../../../src/domain/Backend.js"
import { Policy } from "../../../src/domain/Policy.js"

export const tempDir = (): string => mkdtempSync(join(tmpdir(), "sidecar-sqlite-"))

/** A 32-byte master key as 64 hex digits, different for each seed. */
export const hexKey = (seed: number): string => Buffer.alloc(32, seed).toString("hex")

export const backendInput = (id: string, fields: Partial<BackendInput> = {}): BackendInput => ({
  id,
  pool: "primary",
  base_url: "https://upstream.example/v1",
  api_key: `sk-secret-${id}-0123456789abcdef`,
  ...fields
})

/** A decoded config (through the real YAML parser) on the database at `db`. */
export const configFor = (db: string, backends: ReadonlyArray<BackendInput> = [], extra: Record<string, unknown> = {}): SidecarConfig => {
  const parsed = parse(stringify({ storage: { sqlite: db }, backends, ...extra }), {}, "test config")
  if (Either.isLeft(parsed)) throw new Error(parsed.left.message)
  return parsed.right
}

export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

export interface OpenStorage {
  /** Runs an effect against the storage's services (its logs captured too). */
  readonly run: <A, E>(effect: Effect.Effect<A, E, StorageLayer.StorageServices>) => Promise<A>
  /** Closes the storage as a shutdown does (writers stopped, queues drained, database closed). */
  readonly close: () => Promise<void>
  readonly logs: Array<LogLine>
}

const capture = (into: Array<LogLine>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, logLevel, message }) => {
      const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
      into.push({ level: logLevel.label, message: text, annotations: Object.fromEntries(annotations) })
    })
  )

const quiet = Logger.remove(Logger.defaultLogger)

const storageLayer = (config: SidecarConfig, options: StorageLayer.StorageOptions, logs: Array<LogLine>) =>
  StorageLayer.layerWith(options).pipe(
    Layer.provide(Layer.succeedContext(Context.make(AppConfig, config).pipe(Context.add(Policy, toPolicy(config))))),
    Layer.provide(capture(logs))
  )

/** Opens the storage layer; rejects with the startup error when it fails. */
export const openStorage = async (
  config: SidecarConfig,
  env: Env,
  options: Partial<StorageLayer.StorageOptions> = {}
): Promise<OpenStorage> => {
  const logs: Array<LogLine> = []
  const scope = Effect.runSync(Scope.make())
  const built = await Effect.runPromiseExit(Layer.buildWithScope(storageLayer(config, { env, ...options }, logs), scope))
  if (Exit.isFailure(built)) {
    await Effect.runPromise(Scope.close(scope, built))
    throw Option.getOrElse(Cause.failureOption(built.cause), () => Cause.squash(built.cause))
  }
  const context = built.value
  return {
    run: (effect) => Effect.runPromise(Effect.provide(effect, context).pipe(Effect.provide(capture(logs)))),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void)),
    logs
  }
}

/** The startup error of the storage layer (fails the test when it starts). */
export const startupError = async (config: SidecarConfig, env: Env): Promise<StorageLayer.StorageStartupError> => {
  try {
    const storage = await openStorage(config, env)
    await storage.close()
  } catch (e) {
    return e as StorageLayer.StorageStartupError
  }
  throw new Error("expected the storage to fail at startup")
}

/** Runs one query on the database file (opened, migrated if needed, closed). */
export const withSql = <A, E>(db: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(Database.open(db), f)).pipe(Effect.provide(quiet)))

export const query = <A extends object>(db: string, text: string): Promise<ReadonlyArray<A>> =>
  withSql(db, (sql) => sql.unsafe<A>(text))

export const plain = (k: Redacted.Redacted<string> | undefined) => (k === undefined ? undefined : Redacted.value(k))

/** An attempt record with every field set; `i` varies them. */
export const attempt = (i: number, fields: Partial<AttemptRecord> = {}): AttemptRecord => ({
  requestId: `req-${i}`,
  at: 1_700_000_000_000 + i,
  backend: `b${i % 3}`,
  pool: i % 2 === 0 ? "primary" : "fallback",
  model: i % 5 === 0 ? "big" : "small",
  upstreamModel: i % 5 === 0 ? "vendor/big" : "vendor/small",
  phase: "direct",
  attempt: 1 + (i % 4),
  status: i % 7 === 0 ? 429 : 200,
  outcome: i % 7 === 0 ? "rate_limited" : "success",
  errorClass: i % 7 === 0 ? "RateLimited" : "Success",
  firstByteMs: i % 7 === 0 ? undefined : 12.5,
  durationMs: 100 + i,
  promptTokens: i % 7 === 0 ? undefined : 10,
  completionTokens: i % 7 === 0 ? undefined : 5,
  costUsd: i % 7 === 0 ? undefined : 0.25,
  ...(i % 7 === 0 ? {} : { streamEnd: i % 11 === 0 ? "cut" : "complete" }),
  ...fields
})
