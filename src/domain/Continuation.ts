/**
 * After the commit point (SPEC §1): what happens when a committed stream breaks. The data plane
 * has kept the answer so far and built the continuation request (the original request plus that
 * text as an assistant prefill); this program chooses who continues it — the broken backend first
 * if it can and is free, then other capable backends in pool order — within
 * `routing.max_continuations`, honouring cooldowns and rate windows like any attempt.
 */
import { Data, Effect, Option } from "effect"
import { cached } from "./TaggedEnum.js"
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
import type { RequestContext } from "./RequestContext.js"

export interface BrokenStream {
  /**
   * The client's request and its attempts so far (continuations included): continuation attempts
   * are counted and recorded in it, also when the client leaves in the middle of one.
   */
  readonly ctx: RequestContext
  /** The phase that served the request; continuation attempts are recorded under it. */
  readonly phase: Phase
  /** The backend whose stream broke. */
  readonly broken: Backend
  readonly kind: StreamBreakKind
  /** The request that continues the answer, or none when the answer is not plain text. */
  readonly continuation: Option.Option<ProxyRequest>
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
    readonly continuations: number
  }
  /** Nothing continues the answer: the client gets the original break's error event. */
  Abandoned: {
    readonly outcome: Exclude<ContinuationOutcome, "continued">
    readonly continuations: number
  }
}>
export const ContinuationResult = cached(Data.taggedEnum<ContinuationResult>())

/**
 * Emits the break, tries to continue, and emits what came of it (exactly one StreamContinuation
 * per StreamBroken, so `breaks = Σ continuations by outcome` on the dashboard). Never fails.
 */
export const continueStream = (b: BrokenStream) =>
  Effect.gen(function*() {
    const policy = yield* Policy
    const fleet = yield* FleetStore
    const events = yield* LifecycleEvents
    const { id: requestId, model } = b.ctx.request
    const pools = policy.routing.pools
    yield* events.emit(LifecycleEvent.StreamBroken({ requestId, backend: b.broken.id, pool: b.broken.pool, kind: b.kind }))

    const outcome = (outcome: ContinuationOutcome, tries: number, backend?: string) =>
      events.emit(LifecycleEvent.StreamContinuation({ requestId, outcome, kind: b.kind, backend, tries }))
    const abandon = (o: Exclude<ContinuationOutcome, "continued">, used: number) =>
      Effect.as(outcome(o, used - b.continuations), ContinuationResult.Abandoned({ outcome: o, continuations: used }))

    const max = policy.routing.maxContinuations
    if (!hasContinuator(yield* fleet.state, model, pools)) return yield* abandon("no_backend", b.continuations)
    if (b.continuations >= max) return yield* abandon("limit_reached", b.continuations)
    if (Option.isNone(b.continuation)) return yield* abandon("not_continuable", b.continuations)
    const request = b.continuation.value

    const exclude = new Set<string>()
    let used = b.continuations
    // The broken backend first, if it declared continuation and is free now.
    let same = b.broken.prefillContinuation
    const attempts = Effect.gen(function*() {
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
        const r = yield* runAttempt(b.ctx, ticket.value, b.phase, request)
        if (r.class._tag === "Success" && r.reply.response !== undefined) {
          yield* outcome("continued", used - b.continuations, r.ticket.backend.id)
          return ContinuationResult.Continued({
            response: r.reply.response,
            backend: r.ticket.backend,
            record: r.record,
            continuations: used
          })
        }
        exclude.add(r.ticket.backend.id)
      }
      return yield* abandon(used === b.continuations ? "no_backend" : "failed", used)
    })
    // The client leaving interrupts the search: that too is what became of the break.
    return yield* Effect.onInterrupt(attempts, () => outcome("client_closed", used - b.continuations))
  })
