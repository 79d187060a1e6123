/**
 * Loads the YAML config file (SPEC §4): `${VAR}` interpolation, Schema decoding with every
 * problem reported at once, then the SIDECAR_* environment overrides. Fails with ConfigError.
 */
import { readFile } from "node:fs/promises"
import { Context, Data, Effect, Either, Layer, Schema } from "effect"
import { LineCounter, parseDocument } from "yaml"
import { Policy } from "../../domain/Policy.js"
import { type Env, interpolate } from "./Interpolate.js"
import { fromParseError, type Problem, renderPath, renderProblem, scrub, secretValues } from "./Problems.js"
import {
  crossFieldProblems,
  LoggingConfig,
  LogLevelName,
  ServerConfig,
  SidecarConfig,
  StorageConfig,
  toPolicy
} from "./SidecarConfig.js"

export type { Env } from "./Interpolate.js"

export const DEFAULT_PATH = "./sidecar.yaml"

/** The configuration cannot be used; `problems` are `path: message` lines, never containing a secret. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  /** The file (or other source) the problems are about. */
  readonly source: string
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return `Invalid configuration ${this.source}:\n${this.problems.map((p) => `  - ${p}`).join("\n")}`
  }
}

const decode = Schema.decodeUnknownEither(SidecarConfig, { errors: "all", onExcessProperty: "error" })

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** An empty file is an empty mapping; a top-level section left empty (`server:`) takes its defaults. */
const normalize = (tree: unknown): unknown => {
  if (tree === null || tree === undefined) return {}
  if (!isRecord(tree)) return tree
  return Object.fromEntries(Object.entries(tree).filter(([, v]) => v !== null))
}

/** YAML text → plain tree with `${VAR}`s substituted, or the problems found on the way. */
const readTree = (text: string, env: Env): { tree: unknown; problems: Array<Problem>; syntax: Array<string> } => {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const syntax = doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0])
      return `YAML syntax error at line ${line}, column ${col}: ${e.message.split("\n")[0]}`
    })
    return { tree: undefined, problems: [], syntax }
  }
  const problems = interpolate(doc, env)
  try {
    return { tree: normalize(doc.toJS({ maxAliasCount: 1000 })), problems, syntax: [] }
  } catch (e) {
    return { tree: undefined, problems, syntax: [`YAML error: ${e instanceof Error ? e.message : String(e)}`] }
  }
}

interface Overrides {
  readonly server: { host?: string; port?: number }
  readonly storage: { sqlite?: string }
  readonly logging: { level?: LogLevelName }
}

const nonEmpty = (env: Env, name: string): string | undefined => {
  const v = env[name]
  return v === undefined || v.trim() === "" ? undefined : v.trim()
}

const shown = (v: string) => JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)

/** SIDECAR_PORT, SIDECAR_HOST, SIDECAR_DB, SIDECAR_LOG_LEVEL (unset or empty = no override). */
const readOverrides = (env: Env): { overrides: Overrides; problems: Array<string> } => {
  const problems: Array<string> = []
  const server: { host?: string; port?: number } = {}
  const storage: { sqlite?: string } = {}
  const logging: { level?: LogLevelName } = {}
  const host = nonEmpty(env, "SIDECAR_HOST")
  if (host !== undefined) server.host = host
  const port = nonEmpty(env, "SIDECAR_PORT")
  if (port !== undefined) {
    const n = /^\d+$/.test(port) ? Number(port) : NaN
    if (Number.isInteger(n) && n >= 1 && n <= 65535) server.port = n
    else problems.push(`SIDECAR_PORT: must be an integer between 1 and 65535, got ${shown(port)}`)
  }
  const db = nonEmpty(env, "SIDECAR_DB")
  if (db !== undefined) storage.sqlite = db
  const level = nonEmpty(env, "SIDECAR_LOG_LEVEL")
  if (level !== undefined) {
    const decoded = Schema.decodeUnknownOption(LogLevelName)(level.toLowerCase())
    if (decoded._tag === "Some") logging.level = decoded.value
    else problems.push(`SIDECAR_LOG_LEVEL: must be one of: ${LogLevelName.literals.join(", ")}, got ${shown(level)}`)
  }
  return { overrides: { server, storage, logging }, problems }
}

const applyOverrides = (c: SidecarConfig, o: Overrides): SidecarConfig =>
  new SidecarConfig({
    ...c,
    server: new ServerConfig({ ...c.server, ...o.server }),
    storage: new StorageConfig({ ...c.storage, ...o.storage }),
    logging: new LoggingConfig({ ...c.logging, ...o.logging })
  })

/** Is `path` the same as, or inside, `prefix`? */
const within = (path: string, prefix: string) =>
  path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`)

/**
 * Parses config text: YAML → `${VAR}` interpolation → Schema decode (+ cross-field checks) →
 * env overrides. Pure: `env` is the whole environment it may read. Every problem is reported.
 */
export const parse = (text: string, env: Env, sourceName: string): Either.Either<SidecarConfig, ConfigError> => {
  const fail = (problems: ReadonlyArray<string>) =>
    Either.left(new ConfigError({ source: sourceName, problems: [...new Set(problems)] }))
  const { overrides, problems: overrideProblems } = readOverrides(env)
  const { tree, problems: envProblems, syntax } = readTree(text, env)
  if (syntax.length > 0) return fail([...syntax, ...overrideProblems])
  const secrets = secretValues(tree)
  const unresolved = envProblems.map((p) => renderPath(p.path))
  const decoded = decode(tree)
  if (Either.isRight(decoded) && envProblems.length === 0 && overrideProblems.length === 0) {
    return Either.right(applyOverrides(decoded.right, overrides))
  }
  // Problems under a value with a missing variable are consequences of it: drop them.
  const schemaProblems = Either.isLeft(decoded)
    ? [...fromParseError(decoded.left, tree), ...crossFieldProblems(tree)]
      .filter((p) => !unresolved.some((u) => within(renderPath(p.path), u)))
    : []
  const lines = [...envProblems, ...schemaProblems].map(renderProblem).concat(overrideProblems)
  return fail(lines.map((line) => scrub(line, secrets)))
}

/** Where the config comes from: SIDECAR_CONFIG, or `./sidecar.yaml` (optional). */
export const configPath = (env: Env): { readonly path: string; readonly explicit: boolean } => {
  const given = nonEmpty(env, "SIDECAR_CONFIG")
  return given === undefined ? { path: DEFAULT_PATH, explicit: false } : { path: given, explicit: true }
}

export interface LoadedConfig {
  readonly config: SidecarConfig
  /** The file read, or undefined when built-in defaults were used (no file at the default path). */
  readonly source: string | undefined
}

/**
 * Reads and parses the config file. No file at the default path → built-in defaults (env
 * overrides still apply) and `source: undefined`; a missing explicit SIDECAR_CONFIG is an error.
 */
export const loadWithSource = (env: Env): Effect.Effect<LoadedConfig, ConfigError> =>
  Effect.gen(function*() {
    const { explicit, path } = configPath(env)
    const text = yield* Effect.tryPromise({
      try: () => readFile(path, "utf8"),
      catch: (e) => e as NodeJS.ErrnoException
    }).pipe(
      Effect.catchAll((e) => {
        if (e.code === "ENOENT" && !explicit) return Effect.succeed(undefined)
        const reason = e.code === "ENOENT"
          ? "file not found (named by SIDECAR_CONFIG)"
          : `cannot read the file (${e.code ?? e.message})`
        return Effect.fail(new ConfigError({ source: path, problems: [reason] }))
      })
    )
    if (text === undefined) {
      const config = yield* parse("", env, `built-in defaults (no ${path})`)
      return { config, source: undefined }
    }
    const config = yield* parse(text, env, path)
    return { config, source: path }
  })

/** Reads and parses the config file at SIDECAR_CONFIG (default `./sidecar.yaml`). */
export const load = (env: Env): Effect.Effect<SidecarConfig, ConfigError> =>
  Effect.map(loadWithSource(env), (loaded) => loaded.config)

/** The loaded configuration, for the app's wiring. */
export class AppConfig extends Context.Tag("sidecar/AppConfig")<AppConfig, SidecarConfig>() {}

/** Provides AppConfig and the domain's Policy from the config file named by `env`. */
export const layer = (env: Env): Layer.Layer<AppConfig | Policy, ConfigError> =>
  Layer.effectContext(
    Effect.map(load(env), (config) => Context.make(AppConfig, config).pipe(Context.add(Policy, toPolicy(config))))
  )
