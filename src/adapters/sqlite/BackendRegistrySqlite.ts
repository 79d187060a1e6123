/**
 * The BackendRegistry on SQLite: a list in memory (loaded at startup), every change written to
 * the database first and then pushed into the FleetStore before the effect returns (admin path).
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Clock, Effect, Either, Layer, Option, type Redacted, SynchronizedRef } from "effect"
import type { Backend } from "../../domain/Backend.js"
import { BackendExists, BackendNotFound, BackendRegistry, type BackendRegistryShape } from "../../domain/ports/BackendRegistry.js"
import { FleetStore, type FleetStoreShape } from "../../domain/ports/FleetStore.js"
import { KeyCipher, type KeyCipherShape } from "../secrets/KeyCipher.js"
import { MasterKeyMismatch } from "../secrets/MasterKey.js"
import { type BackendRow, fromRow, keyOf, sameKey, type Source, specOf, StoredBackendInvalid, toRow } from "./BackendRows.js"

interface Entry {
  readonly backend: Backend
  readonly source: Source
  readonly position: number
}

export interface RegistryOptions {
  /** The backends of the config file, in file order. */
  readonly configBackends: ReadonlyArray<Backend>
  /** For messages. */
  readonly database: string
  readonly keySource: string
}

/** A database error on the admin path is a defect: the port promises only its domain errors. */
const orDie = <A, R>(effect: Effect.Effect<A, SqlError.SqlError, R>) => Effect.orDie(effect)

/**
 * Reconciles the database with the config file, in one transaction:
 * - every stored key must decrypt, else MasterKeyMismatch before anything is written;
 * - config backends are upserted in file order (the file wins over a stored backend of the same id);
 * - backends that came from the config and are no longer in it are DELETED (with their cooldown
 *   state): the file owns them, and re-adding one to the file brings it back;
 * - admin-created backends follow, in creation order.
 */
const reconcile = (cipher: KeyCipherShape, options: RegistryOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<BackendRow>`SELECT * FROM backends ORDER BY position, id`
    const keys = new Map<string, Redacted.Redacted<string> | undefined>()
    const undecryptable: Array<string> = []
    for (const row of rows) {
      Either.match(keyOf(cipher, row), { onLeft: () => undecryptable.push(row.id), onRight: (k) => keys.set(row.id, k) })
    }
    if (undecryptable.length > 0) {
      return yield* new MasterKeyMismatch({ database: options.database, keySource: options.keySource, backends: undecryptable })
    }
    const configIds = new Set(options.configBackends.map((b) => b.id))
    const byId = new Map(rows.map((r) => [r.id, r]))
    const now = yield* Clock.currentTimeMillis
    const entries: Array<Entry> = []
    const writes: Array<Effect.Effect<unknown, SqlError.SqlError>> = []
    options.configBackends.forEach((b, position) => {
      entries.push({ backend: b, source: "config", position })
      const old = byId.get(b.id)
      const unchanged = old !== undefined && old.source === "config" && old.position === position &&
        old.spec === specOf(b) && old.enabled === (b.enabled ? 1 : 0) && sameKey(keys.get(b.id), b.apiKey)
      if (unchanged) return
      const row = toRow(cipher, b, { source: "config", position, createdAt: old?.created_at ?? now, updatedAt: now })
      writes.push(sql`INSERT INTO backends ${sql.insert(row)} ON CONFLICT (id) DO UPDATE SET
        position = excluded.position, spec = excluded.spec, key_ciphertext = excluded.key_ciphertext,
        key_nonce = excluded.key_nonce, key_tag = excluded.key_tag, source = excluded.source,
        enabled = excluded.enabled, updated_at = excluded.updated_at`)
    })
    const removed = rows.filter((r) => r.source === "config" && !configIds.has(r.id)).map((r) => r.id)
    for (const id of removed) {
      writes.push(sql`DELETE FROM backends WHERE id = ${id}`, sql`DELETE FROM backend_state WHERE id = ${id}`)
    }
    for (const row of rows) {
      if (row.source !== "admin" || configIds.has(row.id)) continue
      const backend = yield* fromRow(row, keys.get(row.id), options.database)
      const position = entries.length
      entries.push({ backend, source: "admin", position })
      if (row.position !== position) writes.push(sql`UPDATE backends SET position = ${position} WHERE id = ${row.id}`)
    }
    if (writes.length > 0) yield* sql.withTransaction(Effect.all(writes, { discard: true }))
    const overridden = rows.filter((r) => r.source === "admin" && configIds.has(r.id)).map((r) => r.id)
    yield* Effect.logInfo("backends loaded").pipe(Effect.annotateLogs({
      database: options.database,
      from_config: options.configBackends.length,
      from_admin: entries.length - options.configBackends.length,
      removed_from_config: removed.join(","),
      admin_replaced_by_config: overridden.join(",")
    }))
    return entries
  })

/**
 * Loads and reconciles the stored backends (see `reconcile`), publishes them to the FleetStore,
 * and returns the registry. Invariant: the FleetStore's backend list always equals `list`.
 */
export const make = (options: RegistryOptions): Effect.Effect<
  BackendRegistryShape,
  MasterKeyMismatch | StoredBackendInvalid | SqlError.SqlError,
  SqlClient.SqlClient | KeyCipher | FleetStore
> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cipher = yield* KeyCipher
    const fleet: FleetStoreShape = yield* FleetStore
    const loaded = yield* reconcile(cipher, options).pipe(Effect.provideService(SqlClient.SqlClient, sql))
    const ref = yield* SynchronizedRef.make<ReadonlyArray<Entry>>(loaded)
    yield* fleet.setBackends(loaded.map((e) => e.backend))

    /** Serialized: the database write, then the FleetStore, then the in-memory list. */
    const change = <E>(f: (entries: ReadonlyArray<Entry>, now: number) => Effect.Effect<ReadonlyArray<Entry>, E>) =>
      SynchronizedRef.updateEffect(ref, (entries) =>
        Clock.currentTimeMillis.pipe(
          Effect.flatMap((now) => f(entries, now)),
          Effect.tap((next) => fleet.setBackends(next.map((e) => e.backend)))
        ))
    const find = (entries: ReadonlyArray<Entry>, id: string) => entries.find((e) => e.backend.id === id)
    const fromConfigNote = (entry: Entry, what: string) =>
      entry.source === "config"
        ? Effect.logWarning(`backend ${what} comes from the config file: the file's version returns at the next restart`)
          .pipe(Effect.annotateLogs("backend", entry.backend.id))
        : Effect.void

    return BackendRegistry.of({
      list: Effect.map(SynchronizedRef.get(ref), (entries) => entries.map((e) => e.backend)),
      get: (id) => Effect.map(SynchronizedRef.get(ref), (entries) => Option.fromNullable(find(entries, id)?.backend)),
      create: (backend) =>
        change((entries, now) => {
          if (find(entries, backend.id) !== undefined) return Effect.fail(new BackendExists({ id: backend.id }))
          const position = entries.reduce((max, e) => Math.max(max, e.position), -1) + 1
          const row = toRow(cipher, backend, { source: "admin", position, createdAt: now, updatedAt: now })
          return orDie(sql`INSERT INTO backends ${sql.insert(row)}`).pipe(
            Effect.as([...entries, { backend, source: "admin" as const, position }])
          )
        }),
      replace: (backend) =>
        change((entries, now) => {
          const entry = find(entries, backend.id)
          if (entry === undefined) return Effect.fail(new BackendNotFound({ id: backend.id }))
          const row = toRow(cipher, backend, { ...entry, createdAt: now, updatedAt: now })
          return orDie(sql`UPDATE backends SET spec = ${row.spec}, key_ciphertext = ${row.key_ciphertext},
            key_nonce = ${row.key_nonce}, key_tag = ${row.key_tag}, enabled = ${row.enabled},
            updated_at = ${now} WHERE id = ${backend.id}`).pipe(
              Effect.zipRight(fromConfigNote(entry, "changed")),
              Effect.as(entries.map((e) => (e === entry ? { ...e, backend } : e)))
            )
        }),
      remove: (id) =>
        change((entries) => {
          const entry = find(entries, id)
          if (entry === undefined) return Effect.fail(new BackendNotFound({ id }))
          const write = sql.withTransaction(
            Effect.zipRight(sql`DELETE FROM backends WHERE id = ${id}`, sql`DELETE FROM backend_state WHERE id = ${id}`)
          )
          return orDie(write).pipe(
            Effect.zipRight(fromConfigNote(entry, "removed")),
            Effect.as(entries.filter((e) => e !== entry))
          )
        })
    })
  })

export const layer = (options: RegistryOptions) => Layer.effect(BackendRegistry, make(options))
