/**
 * A BackendRegistry with no persistence: the FleetStore's backend list is the registry. For tests
 * and for running without storage. Changes are serialized and applied with `setBackends`.
 */
import { Effect, Layer, Option } from "effect"
import type { Backend } from "../../domain/Backend.js"
import { BackendExists, BackendNotFound, BackendRegistry } from "../../domain/ports/BackendRegistry.js"
import { FleetStore } from "../../domain/ports/FleetStore.js"

export const make = Effect.gen(function*() {
  const fleet = yield* FleetStore
  // One change at a time: each is a read-modify-write of the fleet's list.
  const lock = yield* Effect.makeSemaphore(1)
  const list = Effect.map(fleet.state, (s) => s.backends)
  const change = <E>(f: (backends: ReadonlyArray<Backend>) => Effect.Effect<ReadonlyArray<Backend>, E>) =>
    lock.withPermits(1)(Effect.flatMap(Effect.flatMap(list, f), fleet.setBackends))
  return BackendRegistry.of({
    list,
    get: (id) => Effect.map(list, (bs) => Option.fromNullable(bs.find((b) => b.id === id))),
    create: (backend) =>
      change((bs) =>
        bs.some((b) => b.id === backend.id)
          ? Effect.fail(new BackendExists({ id: backend.id }))
          : Effect.succeed([...bs, backend])
      ),
    replace: (backend) =>
      change((bs) =>
        bs.some((b) => b.id === backend.id)
          ? Effect.succeed(bs.map((b) => (b.id === backend.id ? backend : b)))
          : Effect.fail(new BackendNotFound({ id: backend.id }))
      ),
    remove: (id) =>
      change((bs) =>
        bs.some((b) => b.id === id)
          ? Effect.succeed(bs.filter((b) => b.id !== id))
          : Effect.fail(new BackendNotFound({ id }))
      )
  })
})

/** The registry over the FleetStore in context. */
export const layer: Layer.Layer<BackendRegistry, never, FleetStore> = Layer.effect(BackendRegistry, make)
