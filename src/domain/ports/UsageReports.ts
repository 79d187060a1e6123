/**
 * Port: what the usage ledger says, summed (SPEC §6 `GET /admin/usage`, `sidecar usage`).
 * Counts are upstream attempts.
 */
import { Context, type Effect } from "effect"

export type UsageGroupBy = "backend" | "model" | "pool" | "phase"

export interface UsageQuery {
  /** Epoch ms, inclusive. */
  readonly since: number
  /** Epoch ms, exclusive. */
  readonly until: number
  readonly groupBy: UsageGroupBy
}

export interface UsageTotals {
  readonly requests: number
  readonly errors: number
  readonly promptTokens: number
  readonly completionTokens: number
  readonly costUsd: number
}

export interface UsageRow extends UsageTotals {
  /** The value of the grouping column (backend id, model, pool or phase). */
  readonly key: string
}

export interface UsageSummary {
  readonly rows: ReadonlyArray<UsageRow>
  readonly total: UsageTotals
}

export interface UsageReportsShape {
  readonly summarize: (query: UsageQuery) => Effect.Effect<UsageSummary>
}

export class UsageReports extends Context.Tag("sidecar/UsageReports")<UsageReports, UsageReportsShape>() {}
