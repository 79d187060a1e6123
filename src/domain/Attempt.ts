/**
 * One upstream attempt, as recorded in the usage ledger and carried by AllPoolsExhausted.
 */
import type { FailureClass, OutcomeLabel } from "./FailureClass.js"
import type { Phase } from "./Phase.js"

/** How a committed stream broke after its commit point (SPEC §1 "After the commit point"). */
export type StreamBreakKind = "cut" | "stall" | "reset"

/** How a served attempt's body ended: completely, broken, or cut short by the client leaving. */
export type StreamEnd = "complete" | StreamBreakKind | "client_closed"

/** What is known of an attempt when it is sent. */
export interface AttemptIdentity {
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
}

/** How an attempt ended, to complete its identity into a record. */
export interface AttemptEnding {
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
  readonly streamEnd: StreamEnd | undefined
}

export interface AttemptRecord extends AttemptIdentity, Omit<AttemptEnding, "streamEnd"> {
  readonly streamEnd?: StreamEnd | undefined
}

/**
 * A record built field by field, always with the same shape: on the request path, spreading a
 * partial record into a new one measured ~8 µs per record in V8 (a slow object-clone path).
 */
export const attemptRecord = (id: AttemptIdentity, end: AttemptEnding): AttemptRecord => ({
  requestId: id.requestId,
  at: id.at,
  backend: id.backend,
  pool: id.pool,
  model: id.model,
  upstreamModel: id.upstreamModel,
  phase: id.phase,
  attempt: id.attempt,
  status: end.status,
  outcome: end.outcome,
  errorClass: end.errorClass,
  firstByteMs: end.firstByteMs,
  durationMs: end.durationMs,
  promptTokens: end.promptTokens,
  completionTokens: end.completionTokens,
  costUsd: end.costUsd,
  streamEnd: end.streamEnd
})

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
