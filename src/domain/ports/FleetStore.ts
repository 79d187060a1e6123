/**
 * Port: the live state of the fleet. In memory today (a Ref in a Layer); the shape is what a
 * shared store would implement so that several Sidecar instances share one set of limits.
 */
import { Context, type Effect, type Option } from "effect"
import type { Backend } from "../Backend.js"
import type { CooldownStarted, CooldownState } from "../Cooldown.js"
import type { FailureClass } from "../FailureClass.js"
import type { BackendView, FleetState, PickQuery, Ticket } from "../Fleet.js"

export interface FleetStoreShape {
  /** Chooses a backend and takes its rate slot atomically; none when no candidate is eligible now. */
  readonly pick: (query: PickQuery) => Effect.Effect<Option.Option<Ticket>>
  /** Applies an attempt's outcome to its backend: the cooldown it started, if any, and when the backend is free. */
  readonly report: (ticket: Ticket, outcome: FailureClass) => Effect.Effect<Reported>
  /** Earliest instant (epoch ms) a backend of these pools serving the model is free for a direct send. */
  readonly nextAvailableAt: (model: string, pools: ReadonlyArray<string>) => Effect.Effect<Option.Option<number>>
  /** The given pools, in order, that hold an enabled backend serving the model. */
  readonly servingPools: (model: string, pools: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>>
  /** Every backend with its live state, in configuration order. */
  readonly view: Effect.Effect<ReadonlyArray<BackendView>>
  /** Replaces the backend list; live state is kept for ids that remain. Routes from the next pick on. */
  readonly setBackends: (backends: ReadonlyArray<Backend>) => Effect.Effect<void>
  /** The whole state, for persistence and tests. */
  readonly state: Effect.Effect<FleetState>
  /** Puts back persisted cooldown state (streaks, deadlines) for backends that exist. */
  readonly restoreCooldowns: (cooldowns: ReadonlyMap<string, CooldownState>) => Effect.Effect<void>
}

export interface Reported {
  readonly started: Option.Option<CooldownStarted>
  /** Epoch ms at which the backend's cooldown ends (≤ now when it is not cooling). */
  readonly coolingUntil: number
}

export class FleetStore extends Context.Tag("sidecar/FleetStore")<FleetStore, FleetStoreShape>() {}
