/**
 * The direct phase (SPEC §1 steps 2-5): up to `routing.max_attempts` attempts over the pools in
 * order, with same-backend retries for transient errors and "wait if short, fail over if long"
 * for 429s in the request's best pool.
 */
import { Clock, Context, Effect, Option } from "effect"
import { type AttemptResult, runAttempt } from "./AttemptRunner.js"
import type { Ticket } from "./Fleet.js"
import { LifecycleEvent } from "./LifecycleEvent.js"
import { settle } from "./PhaseStep.js"
import { Policy } from "./Policy.js"
import { FleetStore } from "./ports/FleetStore.js"
import { LifecycleEvents } from "./ports/LifecycleEvents.js"
import type { RequestContext } from "./RequestContext.js"
import type { RequestOutcome } from "./RequestOutcome.js"
import { sleepUntil } from "./SleepUntil.js"

/** The request's best pool: the first allowed pool with an enabled backend serving its model. */
export const bestPool = (ctx: RequestContext) =>
  Effect.flatMap(FleetStore, (fleet) => fleet.servingPools(ctx.request.model, ctx.pools)).pipe(
    Effect.map((pools) => Option.fromNullable(pools[0]))
  )

/**
 * The first attempt is the common case (a pick, a 2xx): it runs as a plain flatMap chain; only a
 * request whose first attempt did not settle it enters the loop below, carrying that result.
 */
export const directPhase = (ctx: RequestContext) =>
  // One context read (Effect.zip of two services runs Effect.all's machinery: measured ~10 ops).
  Effect.flatMap(Effect.context<Policy | FleetStore>(), (services) => {
    const policy = Context.get(services, Policy)
    const fleet = Context.get(services, FleetStore)
    if (policy.routing.maxAttempts <= 0 || ctx.pools.length === 0) return Effect.succeed(Option.none<RequestOutcome>())
    return Effect.flatMap(fleet.pick({ model: ctx.request.model, pools: ctx.pools, mode: "direct" }), (ticket) =>
      Option.isNone(ticket)
        ? Effect.succeed(Option.none<RequestOutcome>())
        : Effect.flatMap(runAttempt(ctx, ticket.value, "direct"), (first) => {
          const done = settle(ctx, first, "direct")
          return Option.isSome(done) ? Effect.succeed(done) : directRetries(ctx, first)
        }))
  })

/** The rest of the direct phase, after a first attempt that did not settle the request. */
const directRetries = (ctx: RequestContext, first: AttemptResult) =>
  Effect.gen(function*() {
    const policy = yield* Policy
    const fleet = yield* FleetStore
    const events = yield* LifecycleEvents
    const { model } = ctx.request
    const exclude = new Set<string>()
    const sameRetries = new Map<string, number>()
    let made = 1
    /** A backend to try again: after a transient error, or after waiting out its short cooldown. */
    let retry: string | undefined
    /** A ticket already taken (a best-pool peer found instead of waiting). */
    let pending: Option.Option<Ticket> = Option.none()

    /** What a failed attempt means for the next one. */
    const afterFailure = function*(r: AttemptResult) {
      const id = r.ticket.backend.id
      switch (r.class._tag) {
        case "RateLimited": {
          const now = yield* Clock.currentTimeMillis
          const best = yield* bestPool(ctx)
          const waitMs = r.coolingUntil - now
          if (
            made >= policy.routing.maxAttempts || !Option.contains(best, r.ticket.backend.pool) ||
            waitMs > policy.routing.waitIfShorterThanMs
          ) break
          // A peer in the best pool that can serve now beats waiting for this one.
          pending = yield* fleet.pick({ model, pools: [r.ticket.backend.pool], exclude: new Set([...exclude, id]), mode: "direct" })
          if (Option.isNone(pending)) {
            yield* events.emit(LifecycleEvent.WaitIfShort({ requestId: ctx.request.id, backend: id, waitMs }))
            yield* sleepUntil(r.coolingUntil)
            retry = id
          }
          break
        }
        case "Transient": {
          const used = sameRetries.get(id) ?? 0
          const now = yield* Clock.currentTimeMillis
          if (used < policy.routing.sameBackendRetries && r.coolingUntil <= now) {
            sameRetries.set(id, used + 1)
            retry = id
          } else exclude.add(id)
          break
        }
        case "Timeout":
        case "KeyRejected":
          // A silent backend stays silent; a refused key stays refused.
          exclude.add(id)
          break
      }
    }

    yield* afterFailure(first)
    while (made < policy.routing.maxAttempts && ctx.pools.length > 0) {
      let ticket = pending
      pending = Option.none()
      if (Option.isNone(ticket)) {
        ticket = yield* fleet.pick({ model, pools: ctx.pools, exclude, mode: "direct", only: retry })
        if (Option.isNone(ticket) && retry !== undefined) {
          // The backend to retry is no longer eligible (cooling again, rate window full): move on.
          exclude.add(retry)
          retry = undefined
          continue
        }
      }
      retry = undefined
      if (Option.isNone(ticket)) return Option.none<RequestOutcome>()
      made++
      const r = yield* runAttempt(ctx, ticket.value, "direct")
      const done = settle(ctx, r, "direct")
      if (Option.isSome(done)) return done
      yield* afterFailure(r)
    }
    return Option.none<RequestOutcome>()
  })
