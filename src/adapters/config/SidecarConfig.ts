/**
 * The whole config file as a Schema (SPEC §4): server, storage, security, logging, the policy
 * blocks and the backends, with defaults, plus the cross-field checks (unique ids, known pools).
 */
import { LogLevel, Option, Schema } from "effect"
import { Backend } from "../../domain/Backend.js"
import { PolicyConfig, PolicyFields, RoutingPolicy } from "../../domain/Policy.js"

const withDefault = <A, I, R>(schema: Schema.Schema<A, I, R>, value: A) =>
  Schema.optionalWith(schema, { default: () => value })

const PosInt = Schema.Number.pipe(Schema.int(), Schema.positive())
const NonNegInt = Schema.Number.pipe(Schema.int(), Schema.nonNegative())
const NonBlank = Schema.String.pipe(Schema.filter((s) => s.trim() !== "" || "must not be empty"))

export const Port = Schema.Number.pipe(
  Schema.filter((n) => (Number.isInteger(n) && n >= 1 && n <= 65535) || "must be an integer between 1 and 65535")
)

export class ServerConfig extends Schema.Class<ServerConfig>("ServerConfig")({
  host: withDefault(NonBlank, "127.0.0.1"),
  port: withDefault(Port, 8080),
  /** Largest request body accepted from a client (bytes). */
  maxBodyBytes: withDefault(PosInt, 10 * 1024 * 1024).pipe(Schema.fromKey("max_body_bytes")),
  /** How long a graceful shutdown lets in-flight requests finish before closing them. */
  shutdownGraceMs: withDefault(NonNegInt, 10_000).pipe(Schema.fromKey("shutdown_grace_ms"))
}) {}

export class StorageConfig extends Schema.Class<StorageConfig>("StorageConfig")({
  sqlite: withDefault(NonBlank, "./data/sidecar.db"),
  /** false: no per-attempt usage rows are written (metrics still count tokens and cost). */
  usageLedger: withDefault(Schema.Boolean, true).pipe(Schema.fromKey("usage_ledger")),
  /** Usage rows older than this many days are deleted (hourly, off the request path); 0 keeps every row. */
  usageRetentionDays: withDefault(NonNegInt, 90).pipe(Schema.fromKey("usage_retention_days"))
}) {}

/** A secret string; its value never appears in an error message (see ConfigFile's sanitizing). */
const Secret = Schema.Redacted(NonBlank)

export class SecurityConfig extends Schema.Class<SecurityConfig>("SecurityConfig")({
  /** Bearer token for /admin/*; absent or empty (e.g. `${SIDECAR_ADMIN_TOKEN}` set to "") → admin API disabled. */
  adminToken: Schema.optionalToOptional(Schema.String, Schema.Redacted(Schema.String), {
    decode: Option.filter((s) => s.trim() !== ""),
    encode: (o) => o
  }).pipe(Schema.fromKey("admin_token")),
  /** Non-empty → clients must send one of these as Bearer. */
  proxyKeys: withDefault(Schema.Array(Secret), []).pipe(Schema.fromKey("proxy_keys"))
}) {}

export const LogLevelName = Schema.Literal("trace", "debug", "info", "warn", "error", "fatal", "off")
export type LogLevelName = typeof LogLevelName.Type

export class LoggingConfig extends Schema.Class<LoggingConfig>("LoggingConfig")({
  level: withDefault(LogLevelName, "info")
}) {}

/** Effect's LogLevel for a configured level name. */
export const toLogLevel = (level: LogLevelName): LogLevel.LogLevel => {
  switch (level) {
    case "trace": return LogLevel.Trace
    case "debug": return LogLevel.Debug
    case "info": return LogLevel.Info
    case "warn": return LogLevel.Warning
    case "error": return LogLevel.Error
    case "fatal": return LogLevel.Fatal
    case "off": return LogLevel.None
  }
}

/** One cross-field problem, its path in the file's (snake_case) names. */
export interface FieldProblem {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const validPools = (u: unknown): u is ReadonlyArray<string> =>
  Array.isArray(u) && u.length > 0 && new Set(u).size === u.length &&
  u.every((p) => typeof p === "string" && p !== "" && p.trim() === p)

/**
 * Duplicate backend ids and backends in a pool that `routing.pools` does not list. Works on the
 * raw file tree as well as on a decoded config (the names involved are the same in both), so the
 * loader can report these together with schema problems; malformed pieces are skipped here
 * (the schema reports them).
 */
export const crossFieldProblems = (config: unknown): Array<FieldProblem> => {
  if (!isRecord(config) || !Array.isArray(config["backends"])) return []
  const backends: ReadonlyArray<unknown> = config["backends"]
  const routing = config["routing"]
  const rawPools = isRecord(routing) ? routing["pools"] : undefined
  const pools: ReadonlyArray<string> | undefined = rawPools === undefined
    ? RoutingPolicy.make({}).pools
    : validPools(rawPools)
    ? rawPools
    : undefined // malformed pools are the schema's to report; checking against them is noise
  const problems: Array<FieldProblem> = []
  const firstIndex = new Map<string, number>()
  backends.forEach((b, i) => {
    if (!isRecord(b)) return
    const id = b["id"]
    if (typeof id === "string") {
      const first = firstIndex.get(id)
      if (first === undefined) firstIndex.set(id, i)
      else problems.push({ path: ["backends", i, "id"], message: `duplicate id ${JSON.stringify(id)} (also backends[${first}])` })
    }
    const pool = b["pool"]
    if (pools !== undefined && typeof pool === "string" && !pools.includes(pool)) {
      problems.push({
        path: ["backends", i, "pool"],
        message: `unknown pool ${JSON.stringify(pool)} (routing.pools: ${pools.join(", ")})`
      })
    }
  })
  return problems
}

const SidecarConfigFields = Schema.Struct({
  server: withDefault(ServerConfig, ServerConfig.make({})),
  storage: withDefault(StorageConfig, StorageConfig.make({})),
  security: withDefault(SecurityConfig, SecurityConfig.make({})),
  logging: withDefault(LoggingConfig, LoggingConfig.make({})),
  ...PolicyFields,
  backends: withDefault(Schema.Array(Backend), [])
})

/** The decoded config file. Decode with `onExcessProperty: "error"` so unknown keys are reported. */
export class SidecarConfig extends Schema.Class<SidecarConfig>("SidecarConfig")(
  SidecarConfigFields.pipe(Schema.filter((c) => crossFieldProblems(c)))
) {}

/** The policy blocks of a config, as the lifecycle's `Policy` service wants them. */
export const toPolicy = (config: SidecarConfig): PolicyConfig =>
  PolicyConfig.make({
    routing: config.routing,
    cooldown: config.cooldown,
    primaryWait: config.primaryWait,
    emergency: config.emergency
  })
