/**
 * Everything observable that happens to a request on its way through the lifecycle. Metrics,
 * logs and the simulator's timeline are all projections of this one stream.
 */
import { Data } from "effect"
import { cached } from "./TaggedEnum.js"
import type { AttemptRecord, StreamBreakKind } from "./Attempt.js"
import type { CooldownReason } from "./Cooldown.js"
import type { Phase } from "./Phase.js"

export type LifecycleEvent = Data.TaggedEnum<{
  /** An attempt reached its commit decision (for a served attempt: before its body streams). */
  AttemptFinished: { readonly record: AttemptRecord }
  BackendCooldown: {
    readonly requestId: string
    readonly backend: string
    readonly pool: string
    readonly reason: CooldownReason
    readonly durationMs: number
    readonly until: number
    readonly streak: number
  }
  /** A request waits for a short cooldown of its best pool's backend ("wait if short"). */
  WaitIfShort: { readonly requestId: string; readonly backend: string; readonly waitMs: number }
  PrimaryWaitEntered: { readonly requestId: string; readonly model: string; readonly pool: string }
  PrimaryWaitRecovered: { readonly requestId: string; readonly backend: string; readonly waitedMs: number }
  PrimaryWaitExhausted: { readonly requestId: string; readonly waitedMs: number }
  /** The request left Primary-Wait neither recovered nor exhausted: a caller-fault answer, or the client left. */
  PrimaryWaitAbandoned: { readonly requestId: string; readonly reason: "caller_fault" | "client_closed" }
  EmergencyActivated: { readonly requestId: string; readonly model: string }
  EmergencySucceeded: { readonly requestId: string; readonly backend: string }
  AllPoolsExhausted: { readonly requestId: string; readonly model: string; readonly retryAfterMs: number }
  /** The request is over: its response committed and (for a served request) its body finished. */
  RequestCompleted: {
    readonly requestId: string
    readonly model: string
    readonly phase: Phase
    readonly status: number
    readonly attempts: number
    readonly backend: string | undefined
    readonly durationMs: number
  }
  /** A committed stream broke after its commit point: cut, stalled past its idle timeout, or reset. */
  StreamBroken: { readonly requestId: string; readonly backend: string; readonly pool: string; readonly kind: StreamBreakKind }
  /**
   * What became of a broken stream (exactly one per StreamBroken): continued on `backend`, or
   * ended with the original break's in-band error event.
   */
  StreamContinuation: {
    readonly requestId: string
    readonly outcome: ContinuationOutcome
    readonly kind: StreamBreakKind
    /** The backend that took the answer over (outcome `continued`). */
    readonly backend: string | undefined
    /** Continuation attempts this break made. */
    readonly tries: number
  }
  /** Tokens and cost of a served attempt, once its body finished. */
  UsageObserved: {
    readonly backend: string
    readonly model: string
    readonly promptTokens: number
    readonly completionTokens: number
    readonly costUsd: number
  }
}>
export const LifecycleEvent = cached(Data.taggedEnum<LifecycleEvent>())

/**
 * `continued`: a continuation committed and the answer streams on. `failed`: continuations were
 * tried and none committed. `no_backend`: no capable backend serves the model, or none is free
 * (cooling, rate window full). `not_continuable`: not a plain text answer (tool calls, several
 * choices, not a chat completion stream, an unreadable event). `limit_reached`: the request used
 * `routing.max_continuations`. `client_closed`: the client left while a continuation was sought.
 */
export type ContinuationOutcome =
  | "continued"
  | "failed"
  | "no_backend"
  | "not_continuable"
  | "limit_reached"
  | "client_closed"
