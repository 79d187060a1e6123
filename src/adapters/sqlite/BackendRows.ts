/**
 * A backend as a `backends` row and back: the YAML shape as JSON without the key (and without
 * `enabled`, a column), the key sealed by KeyCipher with the backend id as associated data.
 */
import { Data, Either, Option, ParseResult, Redacted, Schema } from "effect"
import { Backend } from "../../domain/Backend.js"
import type { KeyCipherShape } from "../secrets/KeyCipher.js"

/** Who owns a stored backend: the config file (upserted at each startup) or the admin API. */
export type Source = "config" | "admin"

/** A `backends` row. A `type`, not an interface: `sql.insert` wants a Record. */
export type BackendRow = {
  readonly id: string
  readonly position: number
  readonly spec: string
  readonly key_ciphertext: Uint8Array | null
  readonly key_nonce: Uint8Array | null
  readonly key_tag: Uint8Array | null
  readonly source: Source
  readonly enabled: number
  readonly created_at: number
  readonly updated_at: number
}

/** A stored backend that no longer decodes (its spec is not a valid backend any more). */
export class StoredBackendInvalid extends Data.TaggedError("StoredBackendInvalid")<{
  readonly database: string
  readonly id: string
  readonly reason: string
}> {
  override get message() {
    return `Backend "${this.id}" stored in ${this.database} is invalid: ${this.reason}. ` +
      "Fix or delete it (sidecar CLI / admin API), or declare it in the config file."
  }
}

const encode = Schema.encodeSync(Backend)
const decodeSpec = Schema.decodeUnknownEither(Backend, { errors: "all" })

/** The same backend with another key (or none). */
export const withKey = (b: Backend, apiKey: Redacted.Redacted<string> | undefined): Backend => {
  const { apiKey: _old, ...rest } = b
  return apiKey === undefined ? Backend.make(rest) : Backend.make({ ...rest, apiKey })
}

/** The spec column: encoded without the key, so the plaintext is never even serialized. */
export const specOf = (b: Backend): string => {
  const encoded: Record<string, unknown> = { ...encode(withKey(b, undefined)) }
  delete encoded["enabled"]
  return JSON.stringify(encoded)
}

export const toRow = (
  cipher: KeyCipherShape,
  b: Backend,
  meta: { readonly source: Source; readonly position: number; readonly createdAt: number; readonly updatedAt: number }
): BackendRow => {
  const sealed = b.apiKey === undefined ? undefined : cipher.seal(b.apiKey, b.id)
  return {
    id: b.id,
    position: meta.position,
    spec: specOf(b),
    key_ciphertext: sealed?.ciphertext ?? null,
    key_nonce: sealed?.nonce ?? null,
    key_tag: sealed?.tag ?? null,
    source: meta.source,
    enabled: b.enabled ? 1 : 0,
    created_at: meta.createdAt,
    updated_at: meta.updatedAt
  }
}

/**
 * The row's key: none when the row has no key; `Left` when it does not decrypt (wrong master key,
 * or a row altered or moved to another id).
 */
export const keyOf = (
  cipher: KeyCipherShape,
  row: BackendRow
): Either.Either<Redacted.Redacted<string> | undefined, "undecryptable"> => {
  if (row.key_ciphertext === null && row.key_nonce === null && row.key_tag === null) return Either.right(undefined)
  if (row.key_ciphertext === null || row.key_nonce === null || row.key_tag === null) return Either.left("undecryptable")
  const opened = cipher.open({ ciphertext: row.key_ciphertext, nonce: row.key_nonce, tag: row.key_tag }, row.id)
  return Option.match(opened, { onNone: () => Either.left("undecryptable"), onSome: (k) => Either.right(k) })
}

/** The backend a row holds, given its decrypted key. Error messages name fields, never the key (it is not decoded here). */
export const fromRow = (
  row: BackendRow,
  apiKey: Redacted.Redacted<string> | undefined,
  database: string
): Either.Either<Backend, StoredBackendInvalid> => {
  const invalid = (reason: string) => new StoredBackendInvalid({ database, id: row.id, reason })
  let spec: unknown
  try {
    spec = JSON.parse(row.spec)
  } catch {
    return Either.left(invalid("its spec is not JSON"))
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) return Either.left(invalid("its spec is not an object"))
  const { api_key: _ignored, ...fields } = spec as Record<string, unknown>
  return decodeSpec({ ...fields, id: row.id, enabled: row.enabled === 1 }).pipe(
    Either.mapLeft((e) => invalid(ParseResult.TreeFormatter.formatErrorSync(e).split("\n").join(" "))),
    Either.map((b) => withKey(b, apiKey))
  )
}

/** Same plaintext key (or both absent). */
export const sameKey = (a: Redacted.Redacted<string> | undefined, b: Redacted.Redacted<string> | undefined) =>
  a === undefined || b === undefined ? a === b : Redacted.value(a) === Redacted.value(b)
