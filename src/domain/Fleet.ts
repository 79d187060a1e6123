/**
 * The live state of every backend (cooldowns, rate windows, round-robin cursors) and the pure
 * operations routing needs on it. One immutable value: a store swaps it atomically.
 */
import { Option } from "effect"
import { type Backend, servesModel } from "./Backend.js"
import * as Cooldown from "./Cooldown.js"
import type { FailureClass } from "./FailureClass.js"
import type { PickMode } from "./Phase.js"
import type { PolicyConfig } from "./Policy.js"
import * as Window from "./SlidingWindow.js"

export interface BackendRuntime {
  readonly cooldown: Cooldown.CooldownState
  /** Every send, for the backend's `rpm`. */
  readonly sends: Window.SlidingWindow
  /** Emergency sends only, for the emergency limit. */
  readonly emergencySends: Window.SlidingWindow
}

export const freshRuntime: BackendRuntime = { cooldown: Cooldown.healthy, sends: Window.empty, emergencySends: Window.empty }

export interface FleetState {
  /** In configuration order; pool membership keeps this order. */
  readonly backends: ReadonlyArray<Backend>
  readonly byPool: ReadonlyMap<string, ReadonlyArray<Backend>>
  readonly runtime: ReadonlyMap<string, BackendRuntime>
  /** Per pool: the member index where the next round-robin scan starts. */
  readonly cursors: ReadonlyMap<string, number>
}

/** What a pick hands out: the backend, and the cooldown generation it was sent under. */
export interface Ticket {
  readonly backend: Backend
  readonly sentAt: number
  readonly generation: number
}

export interface PickQuery {
  readonly model: string
  /** Pools to scan, in order. */
  readonly pools: ReadonlyArray<string>
  /** Backends this request has moved on from. */
  readonly exclude?: ReadonlySet<string> | undefined
  readonly mode: PickMode
  /** Pick only this backend (a retry on the same backend), if it is eligible. */
  readonly only?: string | undefined
  /** Only backends that declared `prefill_continuation` (a continuation attempt). */
  readonly prefillOnly?: boolean | undefined
}

const groupByPool = (backends: ReadonlyArray<Backend>): ReadonlyMap<string, ReadonlyArray<Backend>> => {
  const m = new Map<string, Array<Backend>>()
  for (const b of backends) {
    const members = m.get(b.pool)
    if (members === undefined) m.set(b.pool, [b])
    else members.push(b)
  }
  return m
}

export const make = (backends: ReadonlyArray<Backend>): FleetState =>
  withBackends({ backends: [], byPool: new Map(), runtime: new Map(), cursors: new Map() }, backends)

/** Replaces the backend list (config reload, admin API); runtime state survives for ids that remain. */
export const withBackends = (state: FleetState, backends: ReadonlyArray<Backend>): FleetState => {
  const runtime = new Map<string, BackendRuntime>()
  for (const b of backends) runtime.set(b.id, state.runtime.get(b.id) ?? freshRuntime)
  return { backends, byPool: groupByPool(backends), runtime, cursors: state.cursors }
}

/** Restores persisted cooldown state (after a restart) for the backends that still exist. */
export const withCooldowns = (state: FleetState, cooldowns: ReadonlyMap<string, Cooldown.CooldownState>): FleetState => {
  const runtime = new Map(state.runtime)
  for (const [id, cooldown] of cooldowns) {
    const rt = runtime.get(id)
    if (rt !== undefined) runtime.set(id, { ...rt, cooldown })
  }
  return { ...state, runtime }
}

export const runtimeOf = (state: FleetState, id: string): BackendRuntime => state.runtime.get(id) ?? freshRuntime

/**
 * A state with some parts replaced, built field by field (per request, in pick and report: an
 * object spread measured several times slower in V8).
 */
const withParts = (
  state: FleetState,
  runtime: ReadonlyMap<string, BackendRuntime>,
  cursors: ReadonlyMap<string, number> = state.cursors
): FleetState => ({ backends: state.backends, byPool: state.byPool, runtime, cursors })

/** The emergency limit: `max(1, floor(R × rpm_fraction))`, R = `rpm` or `emergency.default_rpm`. */
export const emergencyLimit = (backend: Backend, policy: PolicyConfig): number =>
  // The epsilon keeps binary noise from flooring 100 × 0.29 = 28.999999999999996 to 28.
  Math.max(1, Math.floor((backend.rpm ?? policy.emergency.defaultRpm) * policy.emergency.rpmFraction + 1e-9))

const underRpm = (b: Backend, rt: BackendRuntime, now: number) =>
  b.rpm === undefined || Window.hasRoom(rt.sends, b.rpm, now)

/**
 * Direct phases: enabled, not cooling, under `rpm`. Emergency: cooldowns ignored, under the
 * emergency limit — and still under `rpm`, so "never more than rpm in any 60 s" holds in every phase.
 */
export const isEligible = (b: Backend, rt: BackendRuntime, mode: PickMode, policy: PolicyConfig, now: number) =>
  b.enabled && underRpm(b, rt, now) && (mode === "direct"
    ? !Cooldown.isCooling(rt.cooldown, now)
    : Window.hasRoom(rt.emergencySends, emergencyLimit(b, policy), now))

const candidate = (b: Backend, q: PickQuery) =>
  servesModel(b, q.model) && (q.exclude === undefined || !q.exclude.has(b.id)) &&
  (q.only === undefined || q.only === b.id) && (q.prefillOnly !== true || b.prefillContinuation)

const take = (state: FleetState, b: Backend, mode: PickMode, now: number): [Ticket, FleetState] => {
  const rt = runtimeOf(state, b.id)
  const ticket: Ticket = { backend: b, sentAt: now, generation: rt.cooldown.generation }
  // Nothing to log for a direct send to a backend without `rpm`: the runtime map stays as it is.
  if (b.rpm === undefined && mode === "direct") return [ticket, state]
  const next: BackendRuntime = {
    cooldown: rt.cooldown,
    // Only a backend with `rpm` needs its send log; without one the log would grow with traffic.
    sends: b.rpm === undefined ? rt.sends : Window.record(rt.sends, now),
    emergencySends: mode === "emergency" ? Window.record(rt.emergencySends, now) : rt.emergencySends
  }
  return [ticket, withParts(state, new Map(state.runtime).set(b.id, next))]
}

/**
 * Chooses the next backend and consumes its rate slot in the same step, so concurrent requests
 * can never overshoot a limit. Pools in the given order; round-robin over eligible members.
 */
export const pick = (
  state: FleetState,
  q: PickQuery,
  policy: PolicyConfig,
  now: number
): [Option.Option<Ticket>, FleetState] => {
  for (const pool of q.pools) {
    const members = state.byPool.get(pool)
    if (members === undefined || members.length === 0) continue
    const start = (state.cursors.get(pool) ?? 0) % members.length
    for (let i = 0; i < members.length; i++) {
      const idx = (start + i) % members.length
      const b = members[idx]!
      if (!candidate(b, q) || !isEligible(b, runtimeOf(state, b.id), q.mode, policy, now)) continue
      const [ticket, taken] = take(state, b, q.mode, now)
      const cursors = q.only === undefined ? new Map(taken.cursors).set(pool, idx + 1) : taken.cursors
      return [Option.some(ticket), withParts(taken, taken.runtime, cursors)]
    }
  }
  return [Option.none(), state]
}

/** Applies an attempt's class to its backend's cooldown state. */
export const report = (
  state: FleetState,
  ticket: Ticket,
  outcome: FailureClass,
  policy: PolicyConfig,
  now: number
): [Option.Option<Cooldown.CooldownStarted>, FleetState] => {
  const rt = state.runtime.get(ticket.backend.id)
  if (rt === undefined) return [Option.none(), state] // removed meanwhile
  const c = rt.cooldown
  let transition: Cooldown.Transition
  switch (outcome._tag) {
    case "Success":
      transition = [Cooldown.onSuccess(c, ticket.generation), Option.none()]
      break
    case "RateLimited":
      transition = Cooldown.onRateLimited(c, policy.cooldown, outcome.hintMs, ticket.generation, now)
      break
    case "Transient":
    case "Timeout":
      transition = Cooldown.onError(c, policy.cooldown, now)
      break
    case "KeyRejected":
      transition = Cooldown.onKeyRejected(c, policy.cooldown, now)
      break
    case "NextPool":
    case "CallerFault":
      return [Option.none(), state]
  }
  const [cooldown, started] = transition
  if (cooldown === c) return [started, state]
  const next: BackendRuntime = { cooldown, sends: rt.sends, emergencySends: rt.emergencySends }
  return [started, withParts(state, new Map(state.runtime).set(ticket.backend.id, next))]
}

const serving = (state: FleetState, model: string, pool: string) =>
  (state.byPool.get(pool) ?? []).filter((b) => b.enabled && servesModel(b, model))

/** The given pools, in order, that hold at least one enabled backend serving the model. */
export const servingPools = (state: FleetState, model: string, pools: ReadonlyArray<string>): ReadonlyArray<string> =>
  pools.filter((p) => serving(state, model, p).length > 0)

/** Whether an enabled backend of these pools can continue a broken answer for the model. */
export const hasContinuator = (state: FleetState, model: string, pools: ReadonlyArray<string>): boolean => {
  // Asked on every attempt: a plain scan, no arrays built.
  for (const p of pools) {
    for (const b of state.byPool.get(p) ?? []) if (b.prefillContinuation && b.enabled && servesModel(b, model)) return true
  }
  return false
}

/** When a backend becomes free for direct sends: the end of its cooldown, or of its full rate window. */
export const availableAt = (b: Backend, rt: BackendRuntime, now: number): number =>
  Math.max(now, rt.cooldown.until, b.rpm === undefined ? now : Window.freeAt(rt.sends, b.rpm, now))

/** The earliest instant a backend of these pools serving the model is free for a direct send. */
export const nextAvailableAt = (
  state: FleetState,
  model: string,
  pools: ReadonlyArray<string>,
  now: number
): Option.Option<number> => {
  let best = Infinity
  for (const p of pools) {
    for (const b of serving(state, model, p)) best = Math.min(best, availableAt(b, runtimeOf(state, b.id), now))
  }
  return best === Infinity ? Option.none() : Option.some(best)
}

/** What an operator sees of one backend (admin API, metrics gauges). */
export interface BackendView {
  readonly backend: Backend
  readonly coolingUntil: Option.Option<number>
  readonly cooldownReason: Cooldown.CooldownReason | undefined
  readonly consecutive429s: number
  readonly consecutiveErrors: number
  /** Requests left in the current 60 s window; none when the backend has no `rpm`. */
  readonly rateWindowRemaining: Option.Option<number>
}

export const view = (state: FleetState, now: number): ReadonlyArray<BackendView> =>
  state.backends.map((backend) => {
    const rt = runtimeOf(state, backend.id)
    return {
      backend,
      coolingUntil: Cooldown.isCooling(rt.cooldown, now) ? Option.some(rt.cooldown.until) : Option.none(),
      cooldownReason: Cooldown.isCooling(rt.cooldown, now) ? rt.cooldown.reason : undefined,
      consecutive429s: rt.cooldown.streak,
      consecutiveErrors: rt.cooldown.errors,
      rateWindowRemaining: backend.rpm === undefined
        ? Option.none()
        : Option.some(Window.remaining(rt.sends, backend.rpm, now))
    }
  })
