/**
 * One upstream attempt, as recorded in the usage ledger and carried by AllPoolsExhausted.
 */
import type { FailureClass, OutcomeLabel } from "./FailureClass.js"
import type { Phase } from "./Phase.js"

/** How a committed stream broke after its commit point (SPEC §1 "After the commit point"). */
export type StreamBreakKind = "cut" | "stall" | "reset"

/** How a served attempt's body ended: completely, broken, or cut short by the client leaving. */
export type StreamEnd = "complete" | StreamBreakKind | "client_closed"

export interface AttemptRecord {
  readonly requestId: string
  /** Epoch ms at which the attempt was sent. */
  readonly at: number
  readonly backend: string
  readonly pool: string
  /** Canonical and upstream model names. */
  readonly model: string
  readonly upstreamModel: string
  readonly phase: Phase
  /** 1-based position of this attempt among the request's attempts. */
  readonly attempt: number
  readonly status: number | undefined
  /** The metric outcome; "cancelled" when the client left while the attempt was in flight. */
  readonly outcome: OutcomeLabel | "cancelled"
  readonly errorClass: FailureClass["_tag"] | "ClientClosed"
  /** Time to the response's first byte, when one came. */
  readonly firstByteMs: number | undefined
  /** Until the commit decision for a failed attempt; until the body's end for a served one. */
  readonly durationMs: number
  /** Tokens as reported by the upstream; undefined when it reported none. */
  readonly promptTokens: number | undefined
  readonly completionTokens: number | undefined
  readonly costUsd: number | undefined
  /** For a served attempt, how its body ended; absent for an attempt that never committed. */
  readonly streamEnd?: StreamEnd
}

/** The short form of an attempt kept in an AllPoolsExhausted error. */
export interface AttemptSummary {
  readonly backend: string
  readonly pool: string
  readonly phase: Phase
  readonly outcome: OutcomeLabel | "cancelled"
  readonly status: number | undefined
}

export const summarize = (r: AttemptRecord): AttemptSummary => ({
  backend: r.backend,
  pool: r.pool,
  phase: r.phase,
  outcome: r.outcome,
  status: r.status
})
