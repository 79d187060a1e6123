/**
 * Primary-Wait (SPEC §1 step 6): when the direct phase found no success, wait for the request's
 * best pool to recover and try one of its backends, up to `primary_wait.max_retries` times. Each
 * wait lasts `interval_ms`, or less when a backend of that pool comes out of cooldown sooner.
 * Every entry ends in exactly one of recovered, exhausted or abandoned (its funnel events).
 */
import { Clock, Effect, Option } from "effect"
import { runAttempt } from "./AttemptRunner.js"
import { LifecycleEvent } from "./LifecycleEvent.js"
import { settle } from "./PhaseStep.js"
import { Policy } from "./Policy.js"
import { FleetStore } from "./ports/FleetStore.js"
import { LifecycleEvents } from "./ports/LifecycleEvents.js"
import type { RequestContext } from "./RequestContext.js"
import type { RequestOutcome } from "./RequestOutcome.js"
import { sleepUntil } from "./SleepUntil.js"

/** When the next try happens: after the interval, or when a cooldown of the pool ends first. */
export const wakeAt = (now: number, intervalMs: number, nextFree: Option.Option<number>): number =>
  Option.match(nextFree, {
    onNone: () => now + intervalMs,
    onSome: (t) => (t > now ? Math.min(now + intervalMs, t) : now + intervalMs)
  })

export const primaryWait = (ctx: RequestContext, pool: string) =>
  Effect.gen(function*() {
    const policy = yield* Policy
    const fleet = yield* FleetStore
    const events = yield* LifecycleEvents
    const { id: requestId, model } = ctx.request
    const enteredAt = yield* Clock.currentTimeMillis
    yield* events.emit(LifecycleEvent.PrimaryWaitEntered({ requestId, model, pool }))
    let settled = false
    const loop = Effect.gen(function*() {
      for (let i = 0; i < policy.primaryWait.maxRetries; i++) {
        const now = yield* Clock.currentTimeMillis
        const next = yield* fleet.nextAvailableAt(model, [pool])
        yield* sleepUntil(wakeAt(now, policy.primaryWait.intervalMs, next))
        const ticket = yield* fleet.pick({ model, pools: [pool], mode: "direct" })
        if (Option.isNone(ticket)) continue
        const r = yield* runAttempt(ctx, ticket.value, "primary_wait")
        const done = settle(ctx, r, "primary_wait")
        if (Option.isSome(done)) {
          settled = true
          const waitedMs = (yield* Clock.currentTimeMillis) - enteredAt
          yield* events.emit(
            done.value._tag === "Served"
              ? LifecycleEvent.PrimaryWaitRecovered({ requestId, backend: r.ticket.backend.id, waitedMs })
              : LifecycleEvent.PrimaryWaitAbandoned({ requestId, reason: "caller_fault" })
          )
          return done
        }
        // A next-pool refusal moved the request past this pool: nothing left to wait for here.
        if (r.class._tag === "NextPool") break
      }
      settled = true
      const waitedMs = (yield* Clock.currentTimeMillis) - enteredAt
      yield* events.emit(LifecycleEvent.PrimaryWaitExhausted({ requestId, waitedMs }))
      return Option.none<RequestOutcome>()
    })
    return yield* loop.pipe(Effect.onInterrupt(() =>
      settled ? Effect.void : events.emit(LifecycleEvent.PrimaryWaitAbandoned({ requestId, reason: "client_closed" }))
    ))
  })
