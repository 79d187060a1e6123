/**
 * Emergency (SPEC §1 step 7): cooldowns are ignored, but every backend is held to its own small
 * emergency limit (and to its rpm), for at most `emergency.max_attempts` attempts, each on a
 * different backend.
 */
import { Effect, Option } from "effect"
import { runAttempt } from "./AttemptRunner.js"
import { LifecycleEvent } from "./LifecycleEvent.js"
import { settle } from "./PhaseStep.js"
import { Policy } from "./Policy.js"
import { FleetStore } from "./ports/FleetStore.js"
import { LifecycleEvents } from "./ports/LifecycleEvents.js"
import type { RequestContext } from "./RequestContext.js"
import type { RequestOutcome } from "./RequestOutcome.js"

export const emergency = (ctx: RequestContext) =>
  Effect.gen(function*() {
    const policy = yield* Policy
    const fleet = yield* FleetStore
    const events = yield* LifecycleEvents
    const { id: requestId, model } = ctx.request
    yield* events.emit(LifecycleEvent.EmergencyActivated({ requestId, model }))
    const tried = new Set<string>()
    for (let i = 0; i < policy.emergency.maxAttempts && ctx.pools.length > 0; i++) {
      const ticket = yield* fleet.pick({ model, pools: ctx.pools, exclude: tried, mode: "emergency" })
      if (Option.isNone(ticket)) break
      tried.add(ticket.value.backend.id)
      const r = yield* runAttempt(ctx, ticket.value, "emergency")
      const done = settle(ctx, r, "emergency")
      if (Option.isSome(done)) {
        if (done.value._tag === "Served") {
          yield* events.emit(LifecycleEvent.EmergencySucceeded({ requestId, backend: r.ticket.backend.id }))
        }
        return done
      }
    }
    return Option.none<RequestOutcome>()
  })
