/**
 * `npx tsx bench/usage-writer.ts [rows] [maxBatch]`: sustained throughput of the SQLite usage ledger on a temp
 * file — the batch writer alone, then end to end (`record` from a producer fiber while the writer
 * runs), with the writer thread (as a file database runs) and on the main thread (in-memory).
 */
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { Effect, Logger, LogLevel } from "effect"
import * as Database from "../src/adapters/sqlite/Database.js"
import * as UsageLedger from "../src/adapters/sqlite/UsageLedger.js"
import type { AttemptRecord } from "../src/domain/Attempt.js"

const TARGET = 20_000
const rows = Number(process.argv[2] ?? 200_000)
const maxBatch = Number(process.argv[3] ?? UsageLedger.defaultOptions.maxBatch)

const record = (i: number): AttemptRecord => ({
  requestId: `0f8e6c1e-7d1a-4c55-9b0e-${String(i).padStart(12, "0")}`,
  at: 1_700_000_000_000 + i,
  backend: `nim-${i % 8}`,
  pool: i % 4 === 0 ? "fallback" : "primary",
  model: i % 3 === 0 ? "llama-70b" : "llama-8b",
  upstreamModel: i % 3 === 0 ? "meta/llama-3.1-70b-instruct" : "meta/llama-3.1-8b-instruct",
  phase: "direct",
  attempt: 1 + (i % 3),
  status: i % 10 === 0 ? 429 : 200,
  outcome: i % 10 === 0 ? "rate_limited" : "success",
  errorClass: i % 10 === 0 ? "RateLimited" : "Success",
  firstByteMs: i % 10 === 0 ? undefined : 180 + (i % 50),
  durationMs: 900 + (i % 400),
  promptTokens: i % 10 === 0 ? undefined : 512,
  completionTokens: i % 10 === 0 ? undefined : 128,
  costUsd: i % 10 === 0 ? undefined : 0.000345
})

const records = Array.from({ length: rows }, (_, i) => record(i))
const rate = (n: number, ms: number) => Math.round(n / (ms / 1000))

/** The writer alone: `insertRecords` in batches of `maxBatch`, one transaction each. */
const writerOnly = (db: string) =>
  Effect.scoped(Effect.gen(function*() {
    const sql = yield* Database.open(db)
    const batch = maxBatch
    const started = performance.now()
    for (let i = 0; i < rows; i += batch) yield* UsageLedger.insertRecords(sql, records.slice(i, i + batch))
    return performance.now() - started
  }))

/**
 * End to end: a producer fiber records in bursts of 1,000, giving the event loop a turn between
 * bursts (as sockets would), while the writer drains; timed until every row is committed.
 */
const endToEnd = (db: string, onThread: boolean) =>
  Effect.gen(function*() {
    // A 1 ms ticker: the longest gap between ticks is the longest the event loop was blocked.
    const gaps: Array<number> = []
    let last = performance.now()
    const ticker = setInterval(() => {
      const now = performance.now()
      gaps.push(now - last)
      last = now
    }, 1)
    const started = performance.now()
    let produced = 0
    yield* Effect.scoped(Effect.gen(function*() {
      const sql = yield* Database.open(db)
      const ledger = yield* UsageLedger.make({ ...UsageLedger.defaultOptions, capacity: rows, maxBatch }, onThread ? db : undefined).pipe(
        Effect.provideService(SqlClient.SqlClient, sql)
      )
      for (let i = 0; i < rows; i += 1000) {
        for (let j = i; j < Math.min(rows, i + 1000); j++) yield* ledger.record(records[j]!)
        yield* Effect.sleep(0) // a macrotask turn, as between requests arriving on sockets
      }
      produced = performance.now() - started
    }))
    const committed = yield* Effect.scoped(Effect.flatMap(Database.open(db), (sql) => sql<{ n: number }>`SELECT count(*) AS n FROM usage`))
    clearInterval(ticker)
    gaps.sort((a, b) => a - b)
    const lagMs = { p99: gaps[Math.floor(gaps.length * 0.99)] ?? 0, max: gaps[gaps.length - 1] ?? 0 }
    return { total: performance.now() - started, produced, count: committed[0]?.n ?? 0, lagMs }
  })

const main = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "sidecar-bench-usage-"))
  try {
    const a = join(dir, "writer.db")
    const writerMs = yield* writerOnly(a)
    const threaded = yield* endToEnd(join(dir, "e2e-thread.db"), true)
    const inline = yield* endToEnd(join(dir, "e2e-main.db"), false)
    const size = (statSync(a).size / (1024 * 1024)).toFixed(1)
    const writerRate = rate(rows, writerMs)
    console.log(`usage ledger, ${rows.toLocaleString("en-US")} rows, WAL + synchronous=NORMAL, one index on at (db ${size} MiB)`)
    console.log(`  writer only   : ${writerRate.toLocaleString("en-US")} rows/s (${writerMs.toFixed(0)} ms, batches of ${maxBatch}, on the main thread)`)
    for (const [name, e2e] of [["writer thread", threaded], ["main thread", inline]] as const) {
      console.log(`  end to end, ${name.padEnd(13)}: ${rate(rows, e2e.total).toLocaleString("en-US")} rows/s (${e2e.total.toFixed(0)} ms until all committed; ` +
        `record() ${((e2e.produced * 1000) / rows).toFixed(1)} µs/row incl. the writer's share of the loop); event loop gaps p99 ` +
        `${e2e.lagMs.p99.toFixed(1)} ms, max ${e2e.lagMs.max.toFixed(1)} ms; rows in db ${e2e.count.toLocaleString("en-US")} / ${rows.toLocaleString("en-US")}`)
    }
    const slowest = Math.min(writerRate, rate(rows, threaded.total), rate(rows, inline.total))
    console.log(`  target        : ${TARGET.toLocaleString("en-US")} rows/s -> ${slowest >= TARGET ? "met" : "NOT met"}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

Effect.runPromise(main.pipe(Logger.withMinimumLogLevel(LogLevel.Warning))).catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
