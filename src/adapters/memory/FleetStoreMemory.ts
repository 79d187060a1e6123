/**
 * The in-memory FleetStore: one Ref holding the whole fleet state, every operation a pure
 * transition applied atomically with the Clock's `now`. No I/O on the request path.
 */
import { Clock, Effect, Layer, Ref } from "effect"
import type { Backend } from "../../domain/Backend.js"
import * as Fleet from "../../domain/Fleet.js"
import { Policy, type PolicyConfig } from "../../domain/Policy.js"
import { FleetStore } from "../../domain/ports/FleetStore.js"

export const make = (backends: ReadonlyArray<Backend>, policy: PolicyConfig) =>
  Effect.map(Ref.make(Fleet.make(backends)), (ref) => {
    const withNow = <A>(f: (s: Fleet.FleetState, now: number) => readonly [A, Fleet.FleetState]) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.modify(ref, (s) => f(s, now)))
    const read = <A>(f: (s: Fleet.FleetState, now: number) => A) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.map(Ref.get(ref), (s) => f(s, now)))
    return FleetStore.of({
      pick: (query) => withNow((s, now) => Fleet.pick(s, query, policy, now)),
      report: (ticket, outcome) =>
        withNow((s, now) => {
          const [started, next] = Fleet.report(s, ticket, outcome, policy, now)
          const coolingUntil = Fleet.runtimeOf(next, ticket.backend.id).cooldown.until
          return [{ started, coolingUntil }, next] as const
        }),
      nextAvailableAt: (model, pools) => read((s, now) => Fleet.nextAvailableAt(s, model, pools, now)),
      servingPools: (model, pools) => Effect.map(Ref.get(ref), (s) => Fleet.servingPools(s, model, pools)),
      view: read(Fleet.view),
      setBackends: (next) => Ref.update(ref, (s) => Fleet.withBackends(s, next)),
      state: Ref.get(ref),
      restoreCooldowns: (cooldowns) => Ref.update(ref, (s) => Fleet.withCooldowns(s, cooldowns))
    })
  })

/** A FleetStore over the given backends, using the Policy in context. */
export const layer = (backends: ReadonlyArray<Backend>) =>
  Layer.effect(FleetStore, Effect.flatMap(Policy, (policy) => make(backends, policy)))
