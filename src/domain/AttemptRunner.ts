/**
 * Runs one attempt through the ports: send, classify, update the backend's state, emit the
 * attempt's events and (for a failed attempt) its usage record, in a span when tracing is on.
 * Phases decide what comes next.
 */
import { Clock, Context, Effect, FiberRef, Option, type Tracer } from "effect"
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
 * `annotate` is undefined (no annotation effects at all): the cost is one FiberRef read (a
 * disabled span still costs a few µs).
 */
const inSpan = <A, E, R>(
  name: string,
  options: Tracer.SpanOptions,
  f: (annotate: Annotate | undefined) => Effect.Effect<A, E, R>
) =>
  Effect.flatMap(FiberRef.get(FiberRef.currentTracerEnabled), (on) =>
    on ? Effect.withSpan(f((attributes) => Effect.annotateCurrentSpan(attributes)), name, options) : f(undefined))

type Services = Policy | Upstream | FleetStore | LifecycleEvents | UsageLog

/**
 * `request`: what to send, when it is not the client's own request (a continuation).
 * Once or more per request, so written as a flatMap chain over one context read rather than a
 * generator with a `yield*` per service (measured: the generator's resumptions dominated it).
 */
export const runAttempt = (ctx: RequestContext, ticket: Ticket, phase: Phase, request: ProxyRequest = ctx.request) =>
  inSpan("sidecar.attempt", {
    kind: "client",
    captureStackTrace: false,
    attributes: { backend: ticket.backend.id, pool: ticket.backend.pool, phase }
  }, (annotate) =>
    Effect.flatMap(Effect.context<Services>(), (services) => {
      const policy = Context.get(services, Policy)
      const upstream = Context.get(services, Upstream)
      const fleet = Context.get(services, FleetStore)
      const events = Context.get(services, LifecycleEvents)
      const usage = Context.get(services, UsageLog)
      const backend = ticket.backend
      const attempt = ++ctx.attempts
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
      // Built only if the client leaves mid-attempt, not on every attempt.
      const cancelled = () => Effect.flatMap(Clock.currentTimeMillis, (now) =>
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
      const send = Effect.flatMap(fleet.state, (state) => {
        const trackAnswer = policy.routing.maxContinuations > 0 &&
          hasContinuator(state, ctx.request.model, policy.routing.pools)
        return upstream.send({ request, backend, ticket, upstreamModel: id.upstreamModel, phase, attempt, trackAnswer })
      })
      const decided = (reply: AttemptReply, now: number) => {
        const cls = classify(reply.observation, policy.routing.nextPoolOn, now)
        const status = statusOf(reply)
        const outcome = outcomeLabel(cls)
        const reported = Effect.flatMap(fleet.report(ticket, cls), (reported) => {
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
          let effects = events.emit(LifecycleEvent.AttemptFinished({ record }))
          if (Option.isSome(reported.started)) {
            const s = reported.started.value
            effects = Effect.zipRight(effects, events.emit(LifecycleEvent.BackendCooldown({
              requestId: ctx.request.id,
              backend: backend.id,
              pool: backend.pool,
              reason: s.reason,
              durationMs: s.durationMs,
              until: s.until,
              streak: s.streak
            })))
          }
          // A served attempt's record is completed (tokens, duration) when its body ends.
          if (cls._tag !== "Success") effects = Effect.zipRight(effects, usage.record(record))
          const result: AttemptResult = { ticket, class: cls, reply, record, coolingUntil: reported.coolingUntil }
          return Effect.as(effects, result)
        })
        return annotate === undefined
          ? reported
          : Effect.zipRight(annotate(status === undefined ? { outcome } : { outcome, status }), reported)
      }
      const sent = Effect.flatMap(Effect.onInterrupt(send, cancelled), (reply) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => decided(reply, now)))
      return annotate === undefined ? sent : Effect.zipRight(annotate({ attempt }), sent)
    }))
