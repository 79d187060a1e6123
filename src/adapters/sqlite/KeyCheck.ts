/**
 * The master-key check value: a known string sealed with the master key and kept in `meta`, so a
 * wrong key is refused at startup even when no backend has a stored key yet.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Effect, Option, Redacted } from "effect"
import { KeyCipher, NONCE_BYTES, TAG_BYTES } from "../secrets/KeyCipher.js"
import { MasterKeyMismatch } from "../secrets/MasterKey.js"

const META_KEY = "master_key_check"
const ASSOCIATED_DATA = "sidecar:master-key-check"
const PLAINTEXT = "sidecar master key check v1"

type MetaRow = { readonly value: Uint8Array }

/**
 * Opens the stored check value with the master key in use (fails with MasterKeyMismatch when it
 * does not open), or stores one on a database that has none.
 */
export const verify = (options: { readonly database: string; readonly keySource: string }): Effect.Effect<
  void,
  MasterKeyMismatch | SqlError.SqlError,
  SqlClient.SqlClient | KeyCipher
> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cipher = yield* KeyCipher
    const rows = yield* sql<MetaRow>`SELECT value FROM meta WHERE key = ${META_KEY}`
    const stored = rows[0]
    if (stored === undefined) {
      const sealed = cipher.seal(Redacted.make(PLAINTEXT), ASSOCIATED_DATA)
      const value = Buffer.concat([sealed.nonce, sealed.tag, sealed.ciphertext])
      yield* sql`INSERT INTO meta ${sql.insert({ key: META_KEY, value })}`
      return
    }
    const bytes = Buffer.from(stored.value)
    const opened = cipher.open({
      nonce: bytes.subarray(0, NONCE_BYTES),
      tag: bytes.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES),
      ciphertext: bytes.subarray(NONCE_BYTES + TAG_BYTES)
    }, ASSOCIATED_DATA)
    if (Option.isNone(opened) || Redacted.value(opened.value) !== PLAINTEXT) {
      return yield* new MasterKeyMismatch({ database: options.database, keySource: options.keySource, backends: [] })
    }
  })
