/**
 * Runs one attempt through the ports: send, classify, update the backend's state, emit the
 * attempt's events and (for a failed attempt) its usage record, in a span when tracing is on.
 * Phases decide what comes next.
 */
import { Clock, Effect, FiberRef, Option, type Tracer } from "effect"
import { type AttemptIdentity, type AttemptRecord, attemptRecord } from "./Attempt.js"
import { upstreamModel } from "./Backend.js"
import { classify, type FailureClass, outcomeLabel } from "./FailureClass.js"
import { hasContinuator, type Ticket } from "./Fleet.js"
import { LifecycleEvent } from "./LifecycleEvent.js"
import type { Phase } from "./Phase.js"
import { Policy } from "./Policy.js"
import { FleetStore } from "./ports/FleetStore.js"
import { LifecycleEvents } from "./ports/LifecycleEvents.js"
import type { AttemptReply } from "./ports/Upstream.js"
import { Upstream } from "./ports/Upstream.js"
import { UsageLog } from "./ports/UsageLog.js"
import type { ProxyRequest } from "./ProxyRequest.js"
import type { RequestContext } from "./RequestContext.js"

export interface AttemptResult {
  readonly ticket: Ticket
  readonly class: FailureClass
  readonly reply: AttemptReply
  readonly record: AttemptRecord
  /** Epoch ms at which the backend's cooldown ends (≤ now when not cooling). */
  readonly coolingUntil: number
}

const statusOf = (reply: AttemptReply): number | undefined =>
  reply.observation._tag === "Response" ? reply.observation.status : undefined

type Annotate = (attributes: Record<string, unknown>) => Effect.Effect<void>

/**
 * Runs `f` in a span when tracing is on. Off (Layer.setTracerEnabled(false)), there is no span and
 * `annotate` does nothing: the cost is one FiberRef read (a disabled span still costs a few µs).
 */
const inSpan = <A, E, R>(name: string, options: Tracer.SpanOptions, f: (annotate: Annotate) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(FiberRef.get(FiberRef.currentTracerEnabled), (on) =>
    on
      ? Effect.withSpan(f((attributes) => Effect.annotateCurrentSpan(attributes)), name, options)
      : f(() => Effect.void))

/** `request`: what to send, when it is not the client's own request (a continuation). */
export const runAttempt = (ctx: RequestContext, ticket: Ticket, phase: Phase, request: ProxyRequest = ctx.request) =>
  inSpan("sidecar.attempt", {
    kind: "client",
    captureStackTrace: false,
    attributes: { backend: ticket.backend.id, pool: ticket.backend.pool, phase }
  }, (annotate) => Effect.gen(function*() {
    const policy = yield* Policy
    const upstream = yield* Upstream
    const fleet = yield* FleetStore
    const events = yield* LifecycleEvents
    const usage = yield* UsageLog
    const backend = ticket.backend
    const attempt = ++ctx.attempts
    yield* annotate({ attempt })
    const id: AttemptIdentity = {
      requestId: ctx.request.id,
      at: ticket.sentAt,
      backend: backend.id,
      pool: backend.pool,
      model: ctx.request.model,
      upstreamModel: upstreamModel(backend, ctx.request.model),
      phase,
      attempt
    }
    const trackAnswer = policy.routing.maxContinuations > 0 &&
      hasContinuator(yield* fleet.state, ctx.request.model, policy.routing.pools)
    const reply = yield* upstream.send({ request, backend, ticket, upstreamModel: id.upstreamModel, phase, attempt, trackAnswer })
      .pipe(Effect.onInterrupt(() =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          usage.record(attemptRecord(id, {
            status: undefined,
            outcome: "cancelled",
            errorClass: "ClientClosed",
            firstByteMs: undefined,
            durationMs: now - ticket.sentAt,
            promptTokens: undefined,
            completionTokens: undefined,
            costUsd: undefined,
            streamEnd: undefined
          })))
      ))
    const now = yield* Clock.currentTimeMillis
    const cls = classify(reply.observation, policy.routing.nextPoolOn, now)
    const status = statusOf(reply)
    const outcome = outcomeLabel(cls)
    yield* annotate(status === undefined ? { outcome } : { outcome, status })
    const reported = yield* fleet.report(ticket, cls)
    const record = attemptRecord(id, {
      status,
      outcome,
      errorClass: cls._tag,
      firstByteMs: reply.firstByteMs,
      durationMs: now - ticket.sentAt,
      promptTokens: undefined,
      completionTokens: undefined,
      costUsd: undefined,
      streamEnd: undefined
    })
    ctx.trail.push(record)
    yield* events.emit(LifecycleEvent.AttemptFinished({ record }))
    if (Option.isSome(reported.started)) {
      const s = reported.started.value
      yield* events.emit(LifecycleEvent.BackendCooldown({
        requestId: ctx.request.id,
        backend: backend.id,
        pool: backend.pool,
        reason: s.reason,
        durationMs: s.durationMs,
        until: s.until,
        streak: s.streak
      }))
    }
    // A served attempt's record is completed (tokens, duration) when its body ends.
    if (cls._tag !== "Success") yield* usage.record(record)
    return { ticket, class: cls, reply, record, coolingUntil: reported.coolingUntil } satisfies AttemptResult
  }))
