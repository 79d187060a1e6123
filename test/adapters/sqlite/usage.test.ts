// The usage ledger: every record becomes exactly one row with every field, the shutdown drain
// writes what is still queued, a full queue drops and counts, and the summary sums exactly.
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { usageDropped } from "../../../src/adapters/sqlite/UsageLedger.js"
import type { AttemptRecord } from "../../../src/domain/Attempt.js"
import { UsageLog } from "../../../src/domain/ports/UsageLog.js"
import { UsageReports } from "../../../src/domain/ports/UsageReports.js"
import { attempt, configFor, hexKey, openStorage, query, tempDir } from "./harness.js"

const env = { SIDECAR_MASTER_KEY: hexKey(5) }

const recordAll = (records: ReadonlyArray<AttemptRecord>) =>
  Effect.flatMap(UsageLog, (log) => Effect.forEach(records, log.record, { discard: true }))

type Row = Record<string, unknown>

describe("usage ledger", () => {
  it("N records become exactly N rows, every field in its column (undefined as NULL)", async () => {
    const db = join(tempDir(), "sidecar.db")
    const storage = await openStorage(configFor(db), env)
    const records = Array.from({ length: 1000 }, (_, i) => attempt(i))
    await storage.run(recordAll(records))
    await storage.close()
    const rows = await query<Row>(db, "SELECT * FROM usage ORDER BY at")
    expect(rows).toHaveLength(1000)
    expect(rows[0]).toEqual({
      id: expect.any(Number),
      at: 1_700_000_000_000,
      request_id: "req-0",
      backend: "b0",
      pool: "primary",
      model: "big",
      upstream_model: "vendor/big",
      phase: "direct",
      attempt: 1,
      status: 429,
      outcome: "rate_limited",
      error_class: "RateLimited",
      first_byte_ms: null,
      duration_ms: 100,
      prompt_tokens: null,
      completion_tokens: null,
      cost_usd: null,
      stream_end: null
    })
    expect(rows[1]).toMatchObject({
      request_id: "req-1",
      status: 200,
      outcome: "success",
      first_byte_ms: 12.5,
      prompt_tokens: 10,
      completion_tokens: 5,
      cost_usd: 0.25,
      stream_end: "complete"
    })
    expect(new Set(rows.map((r) => r["request_id"])).size).toBe(1000)
  })

  it("closing right after 20,000 records drains every one of them", async () => {
    const db = join(tempDir(), "sidecar.db")
    const storage = await openStorage(configFor(db), env)
    await storage.run(recordAll(Array.from({ length: 20_000 }, (_, i) => attempt(i))))
    await storage.close()
    const [count] = await query<{ n: number }>(db, "SELECT count(*) AS n FROM usage")
    expect(count?.n).toBe(20_000)
    expect(storage.logs.some((l) => l.level === "ERROR")).toBe(false)
    const drained = storage.logs.find((l) => l.message === "usage ledger drained")
    expect(drained?.annotations["rows"]).toBeGreaterThan(0) // the finalizer did write the tail
  })

  it("a full queue drops, counts in sidecar_usage_dropped, logs once a second at most, and never fails", async () => {
    const db = join(tempDir(), "sidecar.db")
    const storage = await openStorage(configFor(db), env, { ledger: { capacity: 100, maxBatch: 50, linger: "1 hour" } })
    const before = (await Effect.runPromise(Metric.value(usageDropped))).count
    // Synchronous offers on one fiber: the writer gets no turn, the queue overflows.
    await storage.run(recordAll(Array.from({ length: 1000 }, (_, i) => attempt(i))))
    const after = (await Effect.runPromise(Metric.value(usageDropped))).count
    await storage.close()
    const [count] = await query<{ n: number }>(db, "SELECT count(*) AS n FROM usage")
    expect(count!.n + (after - before)).toBe(1000)
    expect(after - before).toBeGreaterThan(0)
    const warnings = storage.logs.filter((l) => l.message.includes("records dropped"))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.annotations["dropped"]).toBe(1) // the first drop is logged at once; the rest within the second are not
  })

  it("summarize: exact totals per group in [since, until), sorted by key, NULL tokens as 0", async () => {
    const db = join(tempDir(), "sidecar.db")
    const storage = await openStorage(configFor(db), env)
    const records = Array.from({ length: 700 }, (_, i) => attempt(i))
    await storage.run(recordAll(records))
    await storage.close() // flushed
    const reopened = await openStorage(configFor(db), env)
    const since = 1_700_000_000_000 + 100
    const until = 1_700_000_000_000 + 600
    const summary = await reopened.run(Effect.flatMap(UsageReports, (r) => r.summarize({ since, until, groupBy: "backend" })))
    const byModel = await reopened.run(Effect.flatMap(UsageReports, (r) => r.summarize({ since, until, groupBy: "model" })))
    const empty = await reopened.run(Effect.flatMap(UsageReports, (r) => r.summarize({ since: 0, until: 1, groupBy: "phase" })))
    await reopened.close()

    const inRange = records.filter((r) => r.at >= since && r.at < until)
    // An error: an attempt that did not succeed, or a served stream that broke after its commit point.
    const isError = (r: AttemptRecord) => r.outcome !== "success" || r.streamEnd === "cut"
    const expected = (group: (r: AttemptRecord) => string) => {
      const m = new Map<string, { requests: number; errors: number; promptTokens: number; completionTokens: number; costUsd: number }>()
      for (const r of inRange) {
        const t = m.get(group(r)) ?? { requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 }
        m.set(group(r), {
          requests: t.requests + 1,
          errors: t.errors + (isError(r) ? 1 : 0),
          promptTokens: t.promptTokens + (r.promptTokens ?? 0),
          completionTokens: t.completionTokens + (r.completionTokens ?? 0),
          costUsd: t.costUsd + (r.costUsd ?? 0)
        })
      }
      return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, t]) => ({ key, ...t }))
    }
    expect(summary.rows).toEqual(expected((r) => r.backend))
    expect(byModel.rows).toEqual(expected((r) => r.model))
    expect(summary.total).toEqual({
      requests: 500,
      errors: inRange.filter(isError).length,
      promptTokens: inRange.reduce((s, r) => s + (r.promptTokens ?? 0), 0),
      completionTokens: inRange.reduce((s, r) => s + (r.completionTokens ?? 0), 0),
      costUsd: inRange.reduce((s, r) => s + (r.costUsd ?? 0), 0)
    })
    expect(empty).toEqual({ rows: [], total: { requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 } })
  })
})
