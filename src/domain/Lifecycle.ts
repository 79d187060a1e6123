/**
 * The request lifecycle (SPEC §1): direct → Primary-Wait → emergency → exhausted. Orchestration
 * only; each phase lives in its own module and talks to the world through the ports.
 */
import { Clock, Context, Effect, Option } from "effect"
import { type Backend, costUsd, servesModel } from "./Backend.js"
import { directPhase, bestPool } from "./DirectPhase.js"
import { emergency } from "./Emergency.js"
import { AllPoolsExhausted, ModelNotServed } from "./Errors.js"
import { type AttemptRecord, attemptRecord, type StreamEnd, summarize } from "./Attempt.js"
import { LifecycleEvent } from "./LifecycleEvent.js"
import { passedThrough } from "./PhaseStep.js"
import { Policy } from "./Policy.js"
import { FleetStore } from "./ports/FleetStore.js"
import { LifecycleEvents } from "./ports/LifecycleEvents.js"
import { UsageLog } from "./ports/UsageLog.js"
import { primaryWait } from "./PrimaryWait.js"
import type { ProxyRequest } from "./ProxyRequest.js"
import { makeRequestContext, type RequestContext } from "./RequestContext.js"
import type { RequestOutcome, Served } from "./RequestOutcome.js"

/** Minimum Retry-After on an exhausted answer, so callers never busy-loop. */
const MIN_RETRY_AFTER_MS = 1000

const exhausted = (ctx: RequestContext) =>
  Effect.gen(function*() {
    const policy = yield* Policy
    const fleet = yield* FleetStore
    const events = yield* LifecycleEvents
    const { model, id: requestId } = ctx.request
    // The last failure was the caller's (a `next_pool_on` refusal from every pool left): return it.
    if (ctx.lastWasRefusal && ctx.lastRefusal !== undefined) return passedThrough(ctx, ctx.lastRefusal, "exhausted")
    const now = yield* Clock.currentTimeMillis
    const next = yield* fleet.nextAvailableAt(model, policy.routing.pools)
    const retryAfterMs = Math.max(MIN_RETRY_AFTER_MS, Option.getOrElse(next, () => now) - now)
    yield* events.emit(LifecycleEvent.AllPoolsExhausted({ requestId, model, retryAfterMs }))
    return yield* new AllPoolsExhausted({ model, attempts: ctx.trail.map(summarize), retryAfterMs })
  })

/**
 * Runs a request to its outcome. Fails with AllPoolsExhausted when every phase ran out, or
 * ModelNotServed when no backend is configured for the model at all.
 */
export const handle = (request: ProxyRequest) =>
  Effect.flatMap(Policy, (policy) => Effect.flatMap(Clock.currentTimeMillis, (startedAt) => {
    const ctx = makeRequestContext(request, policy.routing.pools, startedAt)
    // Most requests are served in the direct phase: only the others pay for the generator below.
    return Effect.flatMap(directPhase(ctx), (direct) => Option.isSome(direct) ? Effect.succeed(direct.value) : afterDirect(ctx))
  }))

/** Primary-Wait, emergency and exhausted, once the direct phase found no answer. */
const afterDirect = (ctx: RequestContext) =>
  Effect.gen(function*() {
    const policy = yield* Policy
    const fleet = yield* FleetStore
    const { request } = ctx
    const best = yield* bestPool(ctx)
    if (Option.isNone(best)) {
      if (ctx.attempts === 0 && !ctx.lastWasRefusal) {
        const configured = (yield* fleet.state).backends.some((b) =>
          servesModel(b, request.model) && policy.routing.pools.includes(b.pool)
        )
        if (!configured) return yield* new ModelNotServed({ model: request.model })
      }
      return yield* exhausted(ctx)
    }

    const waited = yield* primaryWait(ctx, best.value)
    if (Option.isSome(waited)) return waited.value

    const rescued = yield* emergency(ctx)
    if (Option.isSome(rescued)) return rescued.value

    return yield* exhausted(ctx)
  })

/** What the data plane learned once a served response's body ended. */
export interface BodyOutcome {
  readonly promptTokens: number | undefined
  readonly completionTokens: number | undefined
  /** From the attempt's send to the body's end. */
  readonly durationMs: number
  /** How the body ended, when the data plane knows. */
  readonly end?: StreamEnd | undefined
}

/**
 * Completes a served attempt's usage record once its body has ended: tokens, cost, duration.
 * Tokens the upstream did not report stay unknown (not zero).
 */
export const settleAttempt = (record: AttemptRecord, backend: Backend, body: BodyOutcome) =>
  // Once per served request: plain flatMaps over one context read, not a generator or an
  // Effect.zip of the services (both measured costlier on this path).
  Effect.flatMap(Effect.context<UsageLog | LifecycleEvents>(), (services) => {
    const usage = Context.get(services, UsageLog)
    const events = Context.get(services, LifecycleEvents)
    const known = body.promptTokens !== undefined || body.completionTokens !== undefined
    const prompt = body.promptTokens ?? 0
    const completion = body.completionTokens ?? 0
    const cost = known ? costUsd(backend, record.model, prompt, completion) : undefined
    const recorded = usage.record(attemptRecord(record, {
      status: record.status,
      outcome: record.outcome,
      errorClass: record.errorClass,
      firstByteMs: record.firstByteMs,
      durationMs: body.durationMs,
      promptTokens: body.promptTokens,
      completionTokens: body.completionTokens,
      costUsd: cost,
      streamEnd: body.end
    }))
    if (!known) return recorded
    return Effect.zipRight(
      recorded,
      events.emit(LifecycleEvent.UsageObserved({
        backend: record.backend,
        model: record.model,
        promptTokens: prompt,
        completionTokens: completion,
        costUsd: cost ?? 0
      }))
    )
  })

/** `settleAttempt` for the attempt that served the request. */
export const settleServed = (served: Served, body: BodyOutcome) => settleAttempt(served.record, served.served, body)

export type { RequestOutcome }
