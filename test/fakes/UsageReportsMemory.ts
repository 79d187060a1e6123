/**
 * A UsageReports over an array of AttemptRecords, for admin API and CLI tests: attempts in
 * [since, until) summed per group, rows by key; an error is any attempt whose outcome is not success.
 */
import { Effect, Layer } from "effect"
import type { AttemptRecord } from "../../src/domain/Attempt.js"
import { type UsageQuery, UsageReports, type UsageRow, type UsageSummary, type UsageTotals } from "../../src/domain/ports/UsageReports.js"

const zero: UsageTotals = { requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 }

const add = (t: UsageTotals, r: AttemptRecord): UsageTotals => ({
  requests: t.requests + 1,
  errors: t.errors + (r.outcome === "success" ? 0 : 1),
  promptTokens: t.promptTokens + (r.promptTokens ?? 0),
  completionTokens: t.completionTokens + (r.completionTokens ?? 0),
  costUsd: t.costUsd + (r.costUsd ?? 0)
})

export const summarize = (records: ReadonlyArray<AttemptRecord>, q: UsageQuery): UsageSummary => {
  const groups = new Map<string, UsageTotals>()
  let total = zero
  for (const r of records) {
    if (r.at < q.since || r.at >= q.until) continue
    const key = r[q.groupBy]
    groups.set(key, add(groups.get(key) ?? zero, r))
    total = add(total, r)
  }
  const rows: Array<UsageRow> = [...groups].sort(([a], [b]) => a.localeCompare(b)).map(([key, t]) => ({ key, ...t }))
  return { rows, total }
}

/** The last query asked is kept in `queries` for assertions. */
export const layer = (records: ReadonlyArray<AttemptRecord>, queries: Array<UsageQuery> = []) =>
  Layer.succeed(UsageReports, UsageReports.of({
    summarize: (q) => Effect.sync(() => {
      queries.push(q)
      return summarize(records, q)
    })
  }))

/** An attempt record with defaults, for building fixtures. */
export const attempt = (fields: Partial<AttemptRecord> & Pick<AttemptRecord, "at" | "backend">): AttemptRecord => ({
  requestId: "req",
  pool: "primary",
  model: "llama-70b",
  upstreamModel: "meta/llama",
  phase: "direct",
  attempt: 1,
  status: 200,
  outcome: "success",
  errorClass: "Success",
  firstByteMs: 10,
  durationMs: 20,
  promptTokens: undefined,
  completionTokens: undefined,
  costUsd: undefined,
  ...fields
})
