// Usage retention on a real SQLite file: rows older than storage.usage_retention_days go, in chunks,
// a minute after start and then hourly (on TestClock); 0 keeps every row.
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { SqlClient } from "@effect/sql"
import * as Database from "../../../src/adapters/sqlite/Database.js"
import { insertRecords } from "../../../src/adapters/sqlite/UsageLedger.js"
import * as UsageRetention from "../../../src/adapters/sqlite/UsageRetention.js"
import { attempt, tempDir } from "./harness.js"

const DAY = 86_400_000
/** A new database file for each test. */
const open = Effect.suspend(() => Database.open(join(tempDir(), "sidecar.db")))
const ats = (sql: Effect.Effect.Success<typeof open>) =>
  Effect.map(sql<{ at: number }>`SELECT at FROM usage ORDER BY at`, (rows) => rows.map((r) => r.at / DAY))
const rowsAt = (...days: Array<number>) => days.map((d, i) => attempt(i, { at: d * DAY }))

describe("usage retention", () => {
  it.scoped("pruneBefore deletes exactly the rows older than the cutoff, oldest first, in chunks", () =>
    Effect.gen(function*() {
      const sql = yield* open
      yield* insertRecords(sql, rowsAt(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
      // 7 rows older than day 8, 3 per statement: three statements (3, 3, 1).
      expect(yield* UsageRetention.pruneBefore(sql, 8 * DAY, 3)).toBe(7)
      expect(yield* ats(sql)).toEqual([8, 9, 10])
      expect(yield* UsageRetention.pruneBefore(sql, 8 * DAY, 3)).toBe(0)
    }))

  it.scoped("a minute after start, then every hour: rows older than the retention go, newer ones stay", () =>
    Effect.gen(function*() {
      const sql = yield* open
      yield* TestClock.setTime(200 * DAY)
      yield* insertRecords(sql, rowsAt(10, 109.9, 110.01, 115, 199))
      yield* UsageRetention.start({ ...UsageRetention.defaultOptions(90), chunk: 2 }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      yield* TestClock.adjust("59 seconds")
      expect(yield* ats(sql)).toEqual([10, 109.9, 110.01, 115, 199])
      yield* TestClock.adjust("1 second") // the first prune: cutoff 110 days + 1 minute
      expect(yield* ats(sql)).toEqual([110.01, 115, 199])
      yield* TestClock.adjust("1 hour") // cutoff 110 days + 61 minutes (110.0424 days)
      expect(yield* ats(sql)).toEqual([115, 199])
    }))

  it.scoped("0 keeps every row", () =>
    Effect.gen(function*() {
      const sql = yield* open
      yield* TestClock.setTime(1000 * DAY)
      yield* insertRecords(sql, rowsAt(1, 2))
      yield* UsageRetention.start(UsageRetention.defaultOptions(0)).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      yield* TestClock.adjust("2 days")
      expect(yield* ats(sql)).toEqual([1, 2])
    }))
})
