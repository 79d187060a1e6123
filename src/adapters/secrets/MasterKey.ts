/**
 * The 32-byte master key that encrypts API keys at rest (SPEC §5): SIDECAR_MASTER_KEY (64 hex
 * digits or base64), else a key file beside the database, created once with mode 0600.
 */
import { randomBytes } from "node:crypto"
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Context, Data, Effect, Either, Layer, Redacted } from "effect"
import type { Env } from "../config/Interpolate.js"

export const ENV_VAR = "SIDECAR_MASTER_KEY"
export const KEY_FILE_NAME = "sidecar.master.key"
export const KEY_BYTES = 32

const FORMAT = `${ENV_VAR} must be exactly ${KEY_BYTES} bytes, written as 64 hex digits or as base64`

/** The key given is not 32 bytes of hex or base64. `reason` never contains the value. */
export class MasterKeyInvalid extends Data.TaggedError("MasterKeyInvalid")<{
  /** "SIDECAR_MASTER_KEY", or the key file read because it is unset. */
  readonly source: string
  readonly reason: string
}> {
  override get message() {
    return `Invalid master key from ${this.source}: ${this.reason}. ${FORMAT}`
  }
}

/** The master key does not decrypt what is stored: wrong key, or the key file was replaced. */
export class MasterKeyMismatch extends Data.TaggedError("MasterKeyMismatch")<{
  readonly database: string
  /** Where the key in use came from (see MasterKeyValue.source). */
  readonly keySource: string
  /** Backends whose stored API key failed to decrypt (empty when the check value failed first). */
  readonly backends: ReadonlyArray<string>
}> {
  override get message() {
    const which = this.backends.length > 0 ? ` (backends: ${this.backends.join(", ")})` : ""
    return `The master key from ${this.keySource} does not decrypt the API keys stored in ${this.database}${which}. ` +
      `Set ${ENV_VAR} to the key they were encrypted with; Sidecar does not start with keys it cannot decrypt.`
  }
}

export interface MasterKeyValue {
  readonly key: Redacted.Redacted<Buffer>
  /** For messages: "SIDECAR_MASTER_KEY" or "key file <path>". Never the key. */
  readonly source: string
}

export class MasterKey extends Context.Tag("sidecar/MasterKey")<MasterKey, MasterKeyValue>() {}

/** The key file used when SIDECAR_MASTER_KEY is unset: `sidecar.master.key` in the database's directory. */
export const keyFileBeside = (databasePath: string): string => join(dirname(databasePath), KEY_FILE_NAME)

const HEX = /^[0-9a-fA-F]{64}$/
const BASE64 = /^[A-Za-z0-9+/\-_]+={0,2}$/

/** 64 hex digits, or standard / URL-safe base64 (padding optional) of exactly 32 bytes. The reason never quotes the text. */
export const parseKey = (text: string): Either.Either<Buffer, string> => {
  const s = text.trim()
  if (HEX.test(s)) return Either.right(Buffer.from(s, "hex"))
  if (!BASE64.test(s)) return Either.left(`neither hex nor base64 (${s.length} characters)`)
  const standard = s.replace(/-/g, "+").replace(/_/g, "/")
  const bytes = Buffer.from(standard, "base64")
  // Node's decoder skips what it does not understand: re-encoding must give the input back.
  if (bytes.toString("base64").replace(/=+$/, "") !== standard.replace(/=+$/, "")) {
    return Either.left(`not valid base64 (${s.length} characters)`)
  }
  if (bytes.length !== KEY_BYTES) return Either.left(`decodes to ${bytes.length} bytes, not ${KEY_BYTES}`)
  return Either.right(bytes)
}

/** Writes a fresh random key, only if the file does not exist yet; true when this call created it. */
const createKeyFile = (file: string): boolean => {
  mkdirSync(dirname(file), { recursive: true })
  try {
    writeFileSync(file, `${randomBytes(KEY_BYTES).toString("base64")}\n`, { mode: 0o600, flag: "wx" })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
    throw e
  }
  chmodSync(file, 0o600) // whatever the umask did
  return true
}

const errnoText = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e))

const fromFile = (file: string): Effect.Effect<MasterKeyValue, MasterKeyInvalid> =>
  Effect.gen(function*() {
    const source = `key file ${file}`
    const invalid = (reason: string) => new MasterKeyInvalid({ source, reason })
    const created = yield* Effect.try({ try: () => createKeyFile(file), catch: (e) => invalid(`cannot create it (${errnoText(e)})`) })
    if (created) {
      yield* Effect.logWarning(
        `${ENV_VAR} is not set: created a new master key file (mode 0600). Back it up, or set ${ENV_VAR}: ` +
          "the stored API keys cannot be decrypted without it."
      ).pipe(Effect.annotateLogs("key_file", file))
    }
    const text = yield* Effect.try({ try: () => readFileSync(file, "utf8"), catch: (e) => invalid(`cannot read it (${errnoText(e)})`) })
    const mode = yield* Effect.try({ try: () => statSync(file).mode, catch: (e) => invalid(`cannot stat it (${errnoText(e)})`) })
    if ((mode & 0o077) !== 0) {
      yield* Effect.logWarning("the master key file is readable by other users: chmod 600 it").pipe(
        Effect.annotateLogs("key_file", file)
      )
    }
    const key = yield* Either.mapLeft(parseKey(text), invalid)
    return { key: Redacted.make(key), source }
  })

export interface MasterKeyOptions {
  readonly env: Env
  /** The key file to use when SIDECAR_MASTER_KEY is unset; none for an in-memory database (a random key for this process). */
  readonly keyFile: string | undefined
}

/**
 * The master key: SIDECAR_MASTER_KEY when set and non-empty (a bad value fails, naming the
 * variable, never echoing it); otherwise the key file, created on first use.
 */
export const load = (options: MasterKeyOptions): Effect.Effect<MasterKeyValue, MasterKeyInvalid> => {
  const given = options.env[ENV_VAR]
  if (given === undefined || given.trim() === "") {
    return options.keyFile === undefined
      ? Effect.sync(() => ({ key: Redacted.make(randomBytes(KEY_BYTES)), source: "a random key (in-memory database)" }))
      : fromFile(options.keyFile)
  }
  return Either.match(parseKey(given), {
    onLeft: (reason) => Effect.fail(new MasterKeyInvalid({ source: ENV_VAR, reason })),
    onRight: (key) => Effect.succeed({ key: Redacted.make(key), source: ENV_VAR })
  })
}

export const layer = (options: MasterKeyOptions): Layer.Layer<MasterKey, MasterKeyInvalid> =>
  Layer.effect(MasterKey, load(options))
