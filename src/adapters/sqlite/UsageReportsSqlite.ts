/**
 * UsageReports on the SQLite ledger: one GROUP BY over a time range (SPEC §6 `GET /admin/usage`).
 * Counts are upstream attempts; a NULL token count or cost sums as 0.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import {
  type UsageGroupBy,
  type UsageQuery,
  UsageReports,
  type UsageReportsShape,
  type UsageRow,
  type UsageTotals
} from "../../domain/ports/UsageReports.js"

type SummaryRow = {
  readonly key: string
  readonly requests: number
  readonly errors: number
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly cost_usd: number
}

/** The grouping column for each `group_by` (a closed set: never a caller's string in SQL). */
const COLUMNS: Record<UsageGroupBy, string> = { backend: "backend", model: "model", pool: "pool", phase: "phase" }

const zero: UsageTotals = { requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 }

const add = (a: UsageTotals, b: UsageTotals): UsageTotals => ({
  requests: a.requests + b.requests,
  errors: a.errors + b.errors,
  promptTokens: a.promptTokens + b.promptTokens,
  completionTokens: a.completionTokens + b.completionTokens,
  costUsd: a.costUsd + b.costUsd
})

/**
 * Rows sorted by key, `total` their sum. `since` inclusive, `until` exclusive (epoch ms);
 * `errors` counts attempts whose outcome is not "success" (cancelled ones included), and served
 * attempts whose stream broke after the commit point (cut, stall, reset).
 */
export const make: Effect.Effect<UsageReportsShape, never, SqlClient.SqlClient> = Effect.map(
  SqlClient.SqlClient,
  (sql) => ({
    summarize: (query: UsageQuery) =>
      sql<SummaryRow>`SELECT ${sql(COLUMNS[query.groupBy])} AS key,
          count(*) AS requests,
          count(*) FILTER (WHERE outcome <> 'success' OR stream_end IN ('cut', 'stall', 'reset')) AS errors,
          coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
          coalesce(sum(completion_tokens), 0) AS completion_tokens,
          coalesce(sum(cost_usd), 0.0) AS cost_usd
        FROM usage
        WHERE at >= ${query.since} AND at < ${query.until}
        GROUP BY 1
        ORDER BY 1`.pipe(
        Effect.map((result) => {
          const rows: Array<UsageRow> = result.map((r) => ({
            key: r.key,
            requests: r.requests,
            errors: r.errors,
            promptTokens: r.prompt_tokens,
            completionTokens: r.completion_tokens,
            costUsd: r.cost_usd
          }))
          return { rows, total: rows.reduce<UsageTotals>(add, zero) }
        }),
        Effect.orDie
      )
  })
)

export const layer: Layer.Layer<UsageReports, never, SqlClient.SqlClient> = Layer.effect(UsageReports, make)
