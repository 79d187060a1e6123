/**
 * The usage ledger's inserts on a worker thread with its own connection to the database file.
 * better-sqlite3 is synchronous: on the requests' thread a batch's transaction held the event loop
 * (8.6 µs per row, timed around each batch) and disturbed the caches around it. The thread gets
 * each batch as flat parameter arrays, one per chunk size, commits it in one transaction and
 * answers; batches are written in the order they were sent.
 */
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"
import { Data, Effect, type Scope } from "effect"

/** A bound parameter value (better-sqlite3 binds these as INTEGER/REAL, TEXT or NULL). */
export type Param = number | string | null

/** `size` rows of parameters, flattened, for the INSERT of that many rows. */
export type Chunk = readonly [size: number, params: ReadonlyArray<Param>]

export class UsageWriterFailed extends Data.TaggedError("UsageWriterFailed")<{ readonly reason: string }> {}

export interface UsageWriterThread {
  /** Writes the chunks in one transaction on the thread; succeeds once they are committed. */
  readonly write: (chunks: ReadonlyArray<Chunk>) => Effect.Effect<void, UsageWriterFailed>
}

interface ThreadData {
  readonly driver: string
  readonly path: string
  readonly busyTimeoutMs: number
  readonly inserts: ReadonlyArray<readonly [number, string]>
}

/** The part of better-sqlite3 the thread uses (the package ships no types). */
interface SqliteDriver {
  new(path: string): {
    pragma(source: string): unknown
    prepare(source: string): { run(params: ReadonlyArray<Param>): unknown }
    transaction<A>(f: (a: A) => void): (a: A) => void
  }
}

interface Reply {
  readonly id: number
  readonly error?: string
}

/**
 * The thread's program. It runs as an eval'd script (the same from src/ under the test runner as
 * from the bundle), so it is self-contained: it uses nothing but its workerData and the `load`
 * it is given, the thread's own `require` (a bundler rewrites a `require` written here).
 */
function threadMain(load: (id: string) => unknown): void {
  const { parentPort, workerData } = load("node:worker_threads") as typeof import("node:worker_threads")
  const data = workerData as ThreadData
  const Driver = load(data.driver) as SqliteDriver
  const db = new Driver(data.path)
  db.pragma(`busy_timeout = ${data.busyTimeoutMs}`)
  db.pragma("synchronous = NORMAL")
  const inserts = new Map(data.inserts.map(([size, text]) => [size, db.prepare(text)]))
  const write = db.transaction((chunks: ReadonlyArray<Chunk>) => {
    for (const [size, params] of chunks) inserts.get(size)?.run(params)
  })
  parentPort?.on("message", (m: { readonly id: number; readonly chunks: ReadonlyArray<Chunk> }) => {
    try {
      write(m.chunks)
      parentPort.postMessage({ id: m.id } satisfies Reply)
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) } satisfies Reply)
    }
  })
}

/**
 * Starts the thread in the current scope (terminated when it closes, after whatever the scope
 * closes before it). A thread that failed to start or died fails every write, pending or later,
 * with UsageWriterFailed; the caller decides what to do with the rows.
 */
export const start = (
  path: string,
  inserts: ReadonlyArray<readonly [number, string]>,
  busyTimeoutMs: number
): Effect.Effect<UsageWriterThread, never, Scope.Scope> =>
  Effect.gen(function*() {
    const waiting = new Map<number, (done: Effect.Effect<void, UsageWriterFailed>) => void>()
    let next = 0
    let dead: UsageWriterFailed | undefined
    const data: ThreadData = { driver: createRequire(import.meta.url).resolve("better-sqlite3"), path, busyTimeoutMs, inserts }
    const worker = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Worker(`(${threadMain.toString()})(require)`, {
          eval: true,
          workerData: data,
          // Its garbage is one batch's values at a time: a small heap, not the main thread's
          // defaults (which cost ~12 MB of RSS more under load, measured at 1,000 open streams).
          resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 48 }
        })
      ),
      (w) => Effect.promise(() => w.terminate())
    )
    const failAll = (reason: string) => {
      dead ??= new UsageWriterFailed({ reason })
      for (const resume of waiting.values()) resume(Effect.fail(dead))
      waiting.clear()
    }
    worker.on("message", (m: Reply) => {
      const resume = waiting.get(m.id)
      waiting.delete(m.id)
      resume?.(m.error === undefined ? Effect.void : Effect.fail(new UsageWriterFailed({ reason: m.error })))
    })
    worker.on("error", (e) => failAll(e.message))
    worker.on("exit", (code) => failAll(`the usage writer thread exited (${code})`))
    return {
      write: (chunks) =>
        Effect.async<void, UsageWriterFailed>((resume) => {
          if (dead !== undefined) return resume(Effect.fail(dead))
          const id = next++
          waiting.set(id, resume)
          worker.postMessage({ id, chunks })
        })
    }
  })
