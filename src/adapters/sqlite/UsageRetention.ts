/**
 * Usage rows older than `storage.usage_retention_days` are deleted, so that the ledger of a proxy
 * that runs for months does not fill its disk (one row per upstream attempt: ~8.6 million a day at
 * 100 requests/s). Off the request path: a fiber in the storage scope prunes a minute after start
 * and then every hour, in chunks, with a turn of the event loop between chunks (better-sqlite3 is
 * synchronous, and one DELETE of a month of rows would hold requests for seconds). 0 keeps all.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Clock, Duration, Effect, type Scope } from "effect"

export interface RetentionOptions {
  /** Rows whose `at` is older than this many days are deleted; 0 keeps every row. */
  readonly days: number
  /** Before the first prune, and between prunes. */
  readonly firstAfter: Duration.DurationInput
  readonly every: Duration.DurationInput
  /** Most rows per DELETE statement. */
  readonly chunk: number
}

export const defaultOptions = (days: number): RetentionOptions => ({ days, firstAfter: "1 minute", every: "1 hour", chunk: 5_000 })

const DAY_MS = 86_400_000

/**
 * Deletes the rows older than `cutoffMs` (epoch ms), `chunk` at a time (oldest first, through the
 * `at` index), and returns how many it deleted. Each chunk is its own statement, so requests run
 * between chunks.
 */
export const pruneBefore = (
  sql: SqlClient.SqlClient,
  cutoffMs: number,
  chunk: number
): Effect.Effect<number, SqlError.SqlError> =>
  Effect.gen(function*() {
    let deleted = 0
    for (;;) {
      const gone = yield* sql<{ id: number }>`DELETE FROM usage WHERE id IN (
        SELECT id FROM usage WHERE at < ${cutoffMs} ORDER BY at LIMIT ${chunk}
      ) RETURNING id`
      deleted += gone.length
      if (gone.length < chunk) return deleted
      // A macrotask between chunks: sockets and timers run before the next DELETE.
      yield* Effect.sleep(Duration.zero)
    }
  })

/** One prune: rows older than `days` days before now. A failure is logged; the next prune retries. */
const pruneOnce = (sql: SqlClient.SqlClient, options: RetentionOptions) =>
  Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) => pruneBefore(sql, now - options.days * DAY_MS, options.chunk)),
    Effect.flatMap((n) =>
      n === 0 ? Effect.void : Effect.logInfo("usage rows pruned").pipe(Effect.annotateLogs({ rows: n, retention_days: options.days }))
    ),
    Effect.catchAllCause((cause) => Effect.logWarning("usage rows not pruned", cause))
  )

/** Forks the pruning fiber in the current scope (nothing when `days` is 0). */
export const start = (options: RetentionOptions): Effect.Effect<void, never, SqlClient.SqlClient | Scope.Scope> =>
  options.days <= 0 ? Effect.void : Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.sleep(options.firstAfter).pipe(
      Effect.zipRight(Effect.forever(Effect.zipRight(pruneOnce(sql, options), Effect.sleep(options.every)))),
      Effect.forkScoped,
      Effect.asVoid
    ))
