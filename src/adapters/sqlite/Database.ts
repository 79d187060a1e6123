/**
 * The SQLite database at `storage.sqlite` (SPEC §5): opens the file (creating its directory) with
 * WAL, `synchronous = NORMAL` and a busy timeout, and brings the schema up to date.
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Cause, Context, Data, Effect, Layer, type Scope } from "effect"
import { loader } from "./migrations/index.js"

/** The database cannot be opened, is not a database, or its schema cannot be brought up to date. */
export class StorageUnavailable extends Data.TaggedError("StorageUnavailable")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `Cannot use the database ${this.path} (storage.sqlite / SIDECAR_DB): ${this.reason}`
  }
}

/** How long a statement waits for a lock held by another connection (e.g. the CLI) before failing. */
export const BUSY_TIMEOUT_MS = 5000

/** `:memory:` (or a `file::memory:` URI): a database that lives and dies with the process. */
export const isMemory = (path: string) => path === ":memory:" || path.startsWith("file::memory:")

/** The first line of whatever went wrong, for an error message (never contains a key: no SQL parameters). */
const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  const text = failure instanceof Error ? failure.message : String(failure)
  return text.split("\n")[0] ?? text
}

const migrate = Migrator.make({})({ loader })

/**
 * Opens the database in the current scope (closed when the scope closes) and runs pending
 * migrations. The client has one connection; every statement on it is serialized.
 * Invariant: on success the schema is current and `journal_mode` is WAL (for a file database).
 */
export const open = (path: string): Effect.Effect<SqliteClient.SqliteClient, StorageUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const fail = (reason: string) => new StorageUnavailable({ path, reason })
    if (!isMemory(path)) {
      yield* Effect.try({
        try: () => mkdirSync(dirname(path), { recursive: true }),
        catch: (e) => fail(`cannot create its directory (${(e as NodeJS.ErrnoException).code ?? String(e)})`)
      })
    }
    // better-sqlite3 throws from its constructor and first pragma ("file is not a database",
    // "unable to open database file"): those surface as defects of `make`, turned into the tagged error.
    const client = yield* SqliteClient.make({ filename: path }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.catchAllDefect((d) => Effect.fail(fail(describe(Cause.die(d)))))
    )
    const setup = Effect.gen(function*() {
      yield* client.unsafe(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`)
      yield* client`PRAGMA synchronous = NORMAL`
      const mode = yield* client<{ journal_mode: string }>`PRAGMA journal_mode`
      if (!isMemory(path) && mode[0]?.journal_mode !== "wal") {
        yield* Effect.logWarning("SQLite is not in WAL mode").pipe(
          Effect.annotateLogs({ path, journal_mode: mode[0]?.journal_mode ?? "unknown" })
        )
      }
      const applied = yield* migrate.pipe(Effect.provideService(SqlClient.SqlClient, client))
      if (applied.length > 0) {
        yield* Effect.logInfo("database migrated").pipe(
          Effect.annotateLogs({ path, migrations: applied.map(([id, name]) => `${id}_${name}`).join(",") })
        )
      }
    })
    yield* setup.pipe(Effect.catchAllCause((cause) => Effect.fail(fail(describe(cause)))))
    return client
  })

/** SqlClient (and SqliteClient) on the database at `path`, migrated. */
export const layer = (path: string): Layer.Layer<SqlClient.SqlClient | SqliteClient.SqliteClient, StorageUnavailable> =>
  Layer.scopedContext(Effect.map(open(path), (client) =>
    Context.make(SqliteClient.SqliteClient, client).pipe(Context.add(SqlClient.SqlClient, client))))
