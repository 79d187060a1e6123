// The usage writer thread on a real SQLite file: what it commits is what the main connection reads,
// in order; a failed transaction is reported and rolled back, and the thread goes on; a thread
// that cannot open the database fails its writes, and the ledger then writes on the main thread.
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Exit } from "effect"
import * as Database from "../../../src/adapters/sqlite/Database.js"
import * as UsageLedger from "../../../src/adapters/sqlite/UsageLedger.js"
import * as WriterThread from "../../../src/adapters/sqlite/UsageWriterThread.js"
import { attempt, tempDir } from "./harness.js"

/** A one-row INSERT of three columns (the others have no NOT NULL or are given by the test). */
const INSERT = "INSERT INTO usage (at, request_id, backend, pool, model, upstream_model, phase, attempt, outcome, error_class, duration_ms) " +
  "VALUES (?, ?, 'b', 'primary', 'm', 'm', 'direct', 1, 'success', 'Success', 1)"
const row = (at: number, id: string): WriterThread.Chunk => [1, [at, id]]

describe("usage writer thread", () => {
  it.scoped("commits each write in order; the main connection reads every row", () =>
    Effect.gen(function*() {
      const file = join(tempDir(), "sidecar.db")
      const sql = yield* Database.open(file)
      const thread = yield* WriterThread.start(file, [[1, INSERT]], Database.BUSY_TIMEOUT_MS)
      yield* thread.write([row(1, "a"), row(2, "b")])
      yield* thread.write([row(3, "c")])
      const rows = yield* sql<{ at: number; request_id: string }>`SELECT at, request_id FROM usage ORDER BY id`
      expect(rows.map((r) => [r.at, r.request_id])).toEqual([[1, "a"], [2, "b"], [3, "c"]])
    }))

  it.scoped("a failed transaction fails the write and is rolled back whole; the next write still commits", () =>
    Effect.gen(function*() {
      const file = join(tempDir(), "sidecar.db")
      const sql = yield* Database.open(file)
      const thread = yield* WriterThread.start(file, [[1, INSERT]], Database.BUSY_TIMEOUT_MS)
      // The second row lacks its request id (NOT NULL): neither row of this write is kept.
      const failed = yield* Effect.exit(thread.write([row(1, "a"), [1, [2, null]]]))
      expect(Exit.isFailure(failed) && JSON.stringify(failed.cause)).toContain("NOT NULL")
      yield* thread.write([row(3, "c")])
      const rows = yield* sql<{ request_id: string }>`SELECT request_id FROM usage ORDER BY id`
      expect(rows.map((r) => r.request_id)).toEqual(["c"])
    }))

  it.scoped("a thread that cannot open its database fails every write with UsageWriterFailed", () =>
    Effect.gen(function*() {
      const thread = yield* WriterThread.start(join(tempDir(), "missing", "dir", "x.db"), [[1, INSERT]], 100)
      const first = yield* Effect.flip(thread.write([row(1, "a")]))
      const later = yield* Effect.flip(thread.write([row(2, "b")]))
      expect([first._tag, later._tag]).toEqual(["UsageWriterFailed", "UsageWriterFailed"])
    }))

  it.scoped("the ledger writes on the main connection when its thread is gone: no row is lost", () =>
    Effect.gen(function*() {
      const file = join(tempDir(), "sidecar.db")
      const sql = yield* Database.open(file)
      const records = Array.from({ length: 700 }, (_, i) => attempt(i))
      yield* Effect.scoped(Effect.gen(function*() {
        const ledger = yield* UsageLedger.make({ ...UsageLedger.defaultOptions, linger: "1 millis" }, join(tempDir(), "missing", "x.db"))
        for (const r of records) yield* ledger.record(r)
      })).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      const rows = yield* sql<{ request_id: string }>`SELECT request_id FROM usage ORDER BY id`
      expect(rows.map((r) => r.request_id)).toEqual(records.map((r) => r.requestId))
    }))
})
