/**
 * `GET /admin/usage` (SPEC §6) independent of HTTP: query parameters in, the ledger's sums out,
 * in snake_case with the grouping column named after `group_by`. Counts are upstream attempts.
 */
import { Clock, Effect, Either } from "effect"
import { type UsageGroupBy, UsageReports, type UsageTotals } from "../../domain/ports/UsageReports.js"
import { type AdminFailure, usageQuery } from "./AdminInput.js"

export interface UsageTotalsJson {
  readonly requests: number
  readonly errors: number
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly cost_usd: number
}

/** A row: the totals plus one column named after `group_by` (`{"model": "llama-70b", …}`). */
export type UsageRowJson = UsageTotalsJson & { readonly [column: string]: string | number }

export interface UsageJson {
  readonly since: string
  readonly until: string
  readonly group_by: UsageGroupBy
  readonly rows: ReadonlyArray<UsageRowJson>
  readonly total: UsageTotalsJson
}

const totalsJson = (t: UsageTotals): UsageTotalsJson => ({
  requests: t.requests,
  errors: t.errors,
  prompt_tokens: t.promptTokens,
  completion_tokens: t.completionTokens,
  cost_usd: t.costUsd
})

/** The summary for `since` / `until` / `group_by` (see `usageQuery` for the accepted forms and defaults). */
export const usageReport = (
  params: Iterable<readonly [string, string]>
): Effect.Effect<UsageJson, AdminFailure, UsageReports> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const query = yield* Either.match(usageQuery(params, now), { onLeft: Effect.fail, onRight: Effect.succeed })
    const summary = yield* Effect.flatMap(UsageReports, (u) => u.summarize(query))
    return {
      since: new Date(query.since).toISOString(),
      until: new Date(query.until).toISOString(),
      group_by: query.groupBy,
      rows: summary.rows.map((r) => ({ [query.groupBy]: r.key, ...totalsJson(r) })),
      total: totalsJson(summary.total)
    }
  })
