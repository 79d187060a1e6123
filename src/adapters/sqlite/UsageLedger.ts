/**
 * The usage ledger on SQLite (SPEC §3): `record` only adds to a bounded buffer; a writer fiber
 * in the layer's scope writes batches in one transaction each; a finalizer drains the rest.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Clock, Duration, Effect, Layer, Metric, Ref, type Scope } from "effect"
import type { AttemptRecord } from "../../domain/Attempt.js"
import { UsageLog, type UsageLogShape } from "../../domain/ports/UsageLog.js"
import { BUSY_TIMEOUT_MS } from "./Database.js"
import * as PendingBuffer from "./PendingBuffer.js"
import * as WriterThread from "./UsageWriterThread.js"

export interface LedgerOptions {
  /** Records waiting to be written; beyond this, new ones are dropped (and counted). */
  readonly capacity: number
  /** Most records per transaction. */
  readonly maxBatch: number
  /** After a batch smaller than `maxBatch`, the writer waits this long to gather the next one. */
  readonly linger: Duration.DurationInput
}

/**
 * better-sqlite3 is synchronous: a batch blocks the event loop while it is written (~5-10 ms for
 * 512 rows on a 2-vCPU VM), so batches stay modest and the writer yields a turn between them.
 */
export const defaultOptions: LedgerOptions = { capacity: 100_000, maxBatch: 512, linger: "200 millis" }

/** Records lost because the queue was full. */
export const usageDropped = Metric.counter("sidecar_usage_dropped", {
  description: "Usage records dropped because the usage ledger's queue was full",
  incremental: true
})

/** The `usage` columns in statement order, each with how it is read off a record (undefined → NULL). */
const COLUMNS: ReadonlyArray<readonly [string, (r: AttemptRecord) => WriterThread.Param]> = [
  ["at", (r) => r.at],
  ["request_id", (r) => r.requestId],
  ["backend", (r) => r.backend],
  ["pool", (r) => r.pool],
  ["model", (r) => r.model],
  ["upstream_model", (r) => r.upstreamModel],
  ["phase", (r) => r.phase],
  ["attempt", (r) => r.attempt],
  ["status", (r) => r.status ?? null],
  ["outcome", (r) => r.outcome],
  ["error_class", (r) => r.errorClass],
  ["first_byte_ms", (r) => r.firstByteMs ?? null],
  ["duration_ms", (r) => r.durationMs],
  ["prompt_tokens", (r) => r.promptTokens ?? null],
  ["completion_tokens", (r) => r.completionTokens ?? null],
  ["cost_usd", (r) => r.costUsd ?? null],
  ["stream_end", (r) => r.streamEnd ?? null]
]

/**
 * Rows per INSERT statement, largest first. 256 rows × 17 columns stays far below SQLite's
 * bound-variable cap ("too many SQL variables"), and any batch splits into these five sizes, so
 * the client's prepared-statement cache holds five INSERTs rather than one per batch length.
 */
const CHUNK_SIZES = [256, 64, 16, 4, 1] as const

/**
 * The INSERT text for each chunk size, built once. Hand-built rather than `sql.insert(rows)`:
 * same statements, but no per-batch compile of thousands of placeholders (~1.4× the rows/s).
 */
const INSERTS: ReadonlyMap<number, string> = new Map(CHUNK_SIZES.map((n) => {
  const tuple = `(${COLUMNS.map(() => "?").join(",")})`
  return [n, `INSERT INTO usage (${COLUMNS.map(([c]) => c).join(",")}) VALUES ${Array(n).fill(tuple).join(",")}`]
}))

/** Splits the records into chunk-sized groups of flattened parameters, largest first. */
const chunks = (records: ReadonlyArray<AttemptRecord>): Array<WriterThread.Chunk> => {
  const out: Array<WriterThread.Chunk> = []
  let i = 0
  for (const size of CHUNK_SIZES) {
    for (; records.length - i >= size; i += size) {
      const params: Array<WriterThread.Param> = []
      for (let j = i; j < i + size; j++) {
        const r = records[j]!
        for (const [, read] of COLUMNS) params.push(read(r))
      }
      out.push([size, params])
    }
  }
  return out
}

/**
 * Writes the records in one transaction on this thread's connection. Uninterruptible: never
 * stops between BEGIN and COMMIT.
 */
export const insertRecords = (
  sql: SqlClient.SqlClient,
  records: ReadonlyArray<AttemptRecord>
): Effect.Effect<void, SqlError.SqlError> =>
  records.length === 0 ? Effect.void : sql.withTransaction(
    Effect.forEach(chunks(records), ([size, params]) => sql.unsafe(INSERTS.get(size)!, params), { discard: true })
  ).pipe(Effect.uninterruptible)

/**
 * Writes the records in one transaction on the writer thread; if the thread is gone or its
 * transaction failed (rolled back), on this thread instead, so no row is lost. Uninterruptible.
 */
const insertOnThread = (
  thread: WriterThread.UsageWriterThread,
  sql: SqlClient.SqlClient,
  records: ReadonlyArray<AttemptRecord>,
  /** Whether this failure is news (a dead thread is logged once, not at every batch). */
  isNews: (reason: string) => boolean
): Effect.Effect<void, SqlError.SqlError> =>
  records.length === 0 ? Effect.void : thread.write(chunks(records)).pipe(
    Effect.catchTag("UsageWriterFailed", (e) =>
      Effect.zipRight(
        isNews(e.reason)
          ? Effect.logWarning("usage writer thread failed: rows written on the main thread").pipe(
            Effect.annotateLogs({ reason: e.reason, rows: records.length })
          )
          : Effect.void,
        insertRecords(sql, records)
      )),
    Effect.uninterruptible
  )

/**
 * Builds the ledger in the current scope. Invariants: `record` never blocks, never fails and
 * never touches the database; every record accepted before the scope closes is written (the
 * drain finalizer runs after the writer fiber has stopped).
 */
export const make = (
  options: LedgerOptions = defaultOptions,
  /** The database file, for the writer thread; undefined (an in-memory database) writes on this thread. */
  file?: string
): Effect.Effect<UsageLogShape, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pending = yield* PendingBuffer.make<AttemptRecord>(options.capacity)
    // Started first, so that it is stopped last: after the writer fiber and the drain below.
    const thread = file === undefined ? undefined : yield* WriterThread.start(file, [...INSERTS], BUSY_TIMEOUT_MS)
    let reported: string | undefined
    const isNews = (reason: string) => {
      const news = reason !== reported
      reported = reason
      return news
    }
    const insert = (batch: ReadonlyArray<AttemptRecord>) =>
      thread === undefined ? insertRecords(sql, batch) : insertOnThread(thread, sql, batch, isNews)
    const flush = (batch: ReadonlyArray<AttemptRecord>) =>
      insert(batch).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logError("usage rows not written", cause).pipe(Effect.annotateLogs("rows", batch.length))
        )
      )

    // Finalizers run last-in first-out: the drain is added before the writer is forked, so it
    // runs after the writer's interruption (which waits for a flush in progress to commit).
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        // In batches, as the writer writes: one message or transaction per `maxBatch` rows.
        let drained = 0
        for (let batch = pending.take(options.maxBatch); batch.length > 0; batch = pending.take(options.maxBatch)) {
          yield* flush(batch)
          drained += batch.length
        }
        if (drained > 0) yield* Effect.logInfo("usage ledger drained").pipe(Effect.annotateLogs("rows", drained))
      })
    )
    const writeOnce = Effect.uninterruptibleMask((restore) =>
      restore(pending.awaitSome).pipe(
        Effect.flatMap(() => {
          const batch = pending.take(options.maxBatch)
          // A full batch: more is waiting, but let the event loop (requests) run first — a zero
          // sleep is a timer, i.e. a macrotask, unlike a yield that can stay in the microtask queue.
          return Effect.zipRight(flush(batch), restore(Effect.sleep(batch.length < options.maxBatch ? options.linger : Duration.zero)))
        })
      )
    )
    yield* Effect.forkScoped(Effect.forever(writeOnce))

    // Registered at 0 from the start, so that a dashboard shows it and `increase()` sees the first drop.
    yield* Metric.incrementBy(usageDropped, 0)
    // Drops are counted at once and logged at most once a second, with the count since the last line.
    const drops = yield* Ref.make({ unlogged: 0, loggedAt: -Infinity })
    const dropped = Metric.increment(usageDropped).pipe(
      Effect.zipRight(Clock.currentTimeMillis),
      Effect.flatMap((now) =>
        Ref.modify(drops, (d) =>
          now - d.loggedAt >= 1000
            ? [d.unlogged + 1, { unlogged: 0, loggedAt: now }] as const
            : [0, { unlogged: d.unlogged + 1, loggedAt: d.loggedAt }] as const)
      ),
      Effect.flatMap((n) =>
        n === 0 ? Effect.void : Effect.logWarning("usage ledger queue full: records dropped").pipe(
          Effect.annotateLogs({ dropped: n, capacity: options.capacity })
        )
      )
    )
    return UsageLog.of({
      record: (r) => Effect.suspend(() => (pending.offer(r) ? Effect.void : dropped))
    })
  })

export const layer = (options: LedgerOptions = defaultOptions, file?: string): Layer.Layer<UsageLog, never, SqlClient.SqlClient> =>
  Layer.scoped(UsageLog, make(options, file))
