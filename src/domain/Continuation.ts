/**
 * After the commit point (SPEC §1): what happens when a committed stream breaks. The data plane
 * has kept the answer so far and built the continuation request (the original request plus that
 * text as an assistant prefill); this program chooses who continues it — the broken backend first
 * if it can and is free, then other capable backends in pool order — within
 * `routing.max_continuations`, honouring cooldowns and rate windows like any attempt.
 */
import { Clock, Data, Effect, Option } from "effect"
import type { AttemptRecord, StreamBreakKind } from "./Attempt.js"
import { runAttempt } from "./AttemptRunner.js"
import type { Backend } from "./Backend.js"
import { hasContinuator, type Ticket } from "./Fleet.js"
import { type ContinuationOutcome, LifecycleEvent } from "./LifecycleEvent.js"
import type { Phase } from "./Phase.js"
import { Policy } from "./Policy.js"
import { FleetStore } from "./ports/FleetStore.js"
import { LifecycleEvents } from "./ports/LifecycleEvents.js"
import type { ProxyRequest, UpstreamResponse } from "./ProxyRequest.js"
import { makeRequestContext } from "./RequestContext.js"

export interface BrokenStream {
  /** The client's request (its id and canonical model). */
  readonly request: ProxyRequest
  /** The phase that served the request; continuation attempts are recorded under it. */
  readonly phase: Phase
  /** The backend whose stream broke. */
  readonly broken: Backend
  readonly kind: StreamBreakKind
  /** The request that continues the answer, or none when the answer is not plain text. */
  readonly continuation: Option.Option<ProxyRequest>
  /** Upstream attempts the request made so far (continuations included). */
  readonly attempts: number
  /** Continuation attempts the request made so far. */
  readonly continuations: number
}

export type ContinuationResult = Data.TaggedEnum<{
  /** A continuation committed: its response now feeds the client's stream. */
  Continued: {
    readonly response: UpstreamResponse
    readonly backend: Backend
    /** The continuation attempt's record, settled when its body ends. */
    readonly record: AttemptRecord
    readonly attempts: number
    readonly continuations: number
  }
  /** Nothing continues the answer: the client gets the original break's error event. */
  Abandoned: {
    readonly outcome: Exclude<ContinuationOutcome, "continued">
    readonly attempts: number
    readonly continuations: number
  }
}>
export const ContinuationResult = Data.taggedEnum<ContinuationResult>()

/**
 * Emits the break, tries to continue, and emits what came of it (exactly one StreamContinuation
 * per StreamBroken, so `breaks = Σ continuations by outcome` on the dashboard). Never fails.
 */
export const continueStream = (b: BrokenStream) =>
  Effect.gen(function*() {
    const policy = yield* Policy
    const fleet = yield* FleetStore
    const events = yield* LifecycleEvents
    const { id: requestId, model } = b.request
    const pools = policy.routing.pools
    yield* events.emit(LifecycleEvent.StreamBroken({ requestId, backend: b.broken.id, pool: b.broken.pool, kind: b.kind }))

    const abandon = (outcome: Exclude<ContinuationOutcome, "continued">, attempts: number, used: number) =>
      Effect.as(
        events.emit(LifecycleEvent.StreamContinuation({ requestId, outcome, kind: b.kind, backend: undefined, tries: used - b.continuations })),
        ContinuationResult.Abandoned({ outcome, attempts, continuations: used })
      )

    const max = policy.routing.maxContinuations
    if (!hasContinuator(yield* fleet.state, model, pools)) return yield* abandon("no_backend", b.attempts, b.continuations)
    if (b.continuations >= max) return yield* abandon("limit_reached", b.attempts, b.continuations)
    if (Option.isNone(b.continuation)) return yield* abandon("not_continuable", b.attempts, b.continuations)

    const ctx = makeRequestContext(b.continuation.value, pools, yield* Clock.currentTimeMillis)
    ctx.attempts = b.attempts
    const exclude = new Set<string>()
    let used = b.continuations
    // The broken backend first, if it declared continuation and is free now.
    let same = b.broken.prefillContinuation
    while (used < max) {
      let ticket = Option.none<Ticket>()
      if (same) {
        same = false
        ticket = yield* fleet.pick({ model, pools, mode: "direct", only: b.broken.id, prefillOnly: true })
        exclude.add(b.broken.id)
      }
      if (Option.isNone(ticket)) ticket = yield* fleet.pick({ model, pools, exclude, mode: "direct", prefillOnly: true })
      if (Option.isNone(ticket)) break
      used++
      const r = yield* runAttempt(ctx, ticket.value, b.phase)
      if (r.class._tag === "Success" && r.reply.response !== undefined) {
        yield* events.emit(LifecycleEvent.StreamContinuation({
          requestId,
          outcome: "continued",
          kind: b.kind,
          backend: r.ticket.backend.id,
          tries: used - b.continuations
        }))
        return ContinuationResult.Continued({
          response: r.reply.response,
          backend: r.ticket.backend,
          record: r.record,
          attempts: ctx.attempts,
          continuations: used
        })
      }
      exclude.add(r.ticket.backend.id)
    }
    return yield* abandon(used === b.continuations ? (used >= max ? "limit_reached" : "no_backend") : "failed", ctx.attempts, used)
  })
