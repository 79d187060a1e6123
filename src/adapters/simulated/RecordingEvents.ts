/**
 * LifecycleEvents that keeps every event with its (virtual) instant: the simulator's timeline,
 * and what scenario expectations and invariants are checked against.
 */
import { Clock, Effect, Layer } from "effect"
import type { LifecycleEvent } from "../../domain/LifecycleEvent.js"
import { LifecycleEvents } from "../../domain/ports/LifecycleEvents.js"

export interface TimedEvent {
  readonly at: number
  readonly event: LifecycleEvent
}

export const layer = (into: Array<TimedEvent>) =>
  Layer.succeed(
    LifecycleEvents,
    LifecycleEvents.of({
      emit: (event) => Effect.map(Clock.currentTimeMillis, (at) => void into.push({ at, event }))
    })
  )
