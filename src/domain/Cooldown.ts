/**
 * Cooldown streaks and error ejection for one backend (SPEC §1 step 4-5), as pure
 * transitions over a small immutable record. Time is always a parameter.
 */
import { Option } from "effect"
import type { CooldownPolicy } from "./Policy.js"

export type CooldownReason = "rate_limited" | "errors"

export interface CooldownState {
  /** Consecutive 429 episodes in the current streak (0 = no streak). */
  readonly streak: number
  /** Length of the last rate-limit cooldown of the streak, the base for the next escalation. */
  readonly lastMs: number
  /** When the current cooldown started and ends (epoch ms); `until <= now` means not cooling. */
  readonly since: number
  readonly until: number
  readonly reason: CooldownReason | undefined
  /** Consecutive errors (5xx, connection failures, timeouts) since the last 2xx or 429. */
  readonly errors: number
  /** Bumped each time a cooldown starts; an attempt remembers the value it was sent under. */
  readonly generation: number
}

export const healthy: CooldownState = {
  streak: 0,
  lastMs: 0,
  since: 0,
  until: 0,
  reason: undefined,
  errors: 0,
  generation: 0
}

export const isCooling = (s: CooldownState, now: number): boolean => s.until > now

/** A cooldown that just began, for events and metrics. */
export interface CooldownStarted {
  readonly reason: CooldownReason
  readonly durationMs: number
  readonly until: number
  readonly streak: number
}

export type Transition = readonly [CooldownState, Option.Option<CooldownStarted>]

/**
 * A 2xx ends every streak. A cooldown in force runs its course (an emergency attempt that got
 * through does not prove the limit gone). A 2xx for a request sent before the current cooldown
 * began says nothing about now and changes nothing.
 */
export const onSuccess = (s: CooldownState, sentGeneration: number): CooldownState =>
  sentGeneration < s.generation || (s.streak === 0 && s.errors === 0) ? s : { ...s, streak: 0, lastMs: 0, errors: 0 }

/**
 * A 429. The first cooldown of a streak lasts the hint (when honoured) or `base_ms`; each further
 * one `max(previous × multiplier, hint)` (previous taken as `base_ms` if it was 0); never more
 * than `max_ms`.
 *
 * A 429 for a request that was sent before the current cooldown began (`sentGeneration` older than
 * the state's) belongs to the same episode — concurrent requests all bounce off one limit: it may
 * lengthen the cooldown to its own hint but does not escalate the streak, so N in-flight requests
 * do not multiply the bench time.
 */
export const onRateLimited = (
  s: CooldownState,
  policy: CooldownPolicy,
  hintMs: Option.Option<number>,
  sentGeneration: number,
  now: number
): Transition => {
  const hint = policy.honorRetryAfter ? hintMs : Option.none<number>()
  const sameEpisode = s.streak > 0 && sentGeneration < s.generation
  if (sameEpisode) {
    const until = Option.match(hint, {
      onNone: () => s.until,
      onSome: (h) => Math.max(s.until, now + Math.min(h, policy.maxMs))
    })
    return until === s.until ? [s.errors === 0 ? s : { ...s, errors: 0 }, Option.none()] : [
      { ...s, until, errors: 0 },
      Option.some({ reason: "rate_limited", durationMs: until - now, until, streak: s.streak })
    ]
  }
  // A streak whose last cooldown was 0 (a "Retry-After: 0" hint) escalates from base_ms, or a
  // backend that keeps saying "now" would be retried immediately forever.
  const raw = s.streak === 0
    ? Option.getOrElse(hint, () => policy.baseMs)
    : Math.max((s.lastMs > 0 ? s.lastMs : policy.baseMs) * policy.multiplier, Option.getOrElse(hint, () => 0))
  const durationMs = Math.min(Math.round(raw), policy.maxMs)
  const streak = s.streak + 1
  const until = Math.max(now + durationMs, s.until)
  return [
    { streak, lastMs: durationMs, since: now, until, reason: "rate_limited", errors: 0, generation: s.generation + 1 },
    Option.some({ reason: "rate_limited", durationMs, until, streak })
  ]
}

/**
 * A transient error or timeout. At `error_threshold` consecutive errors the backend is ejected
 * for a fixed `error_ms` (no escalation). The count is not reset by the ejection: a backend that
 * fails again right after coming back is ejected again at once (half-open), until a 2xx.
 */
export const onError = (s: CooldownState, policy: CooldownPolicy, now: number): Transition => {
  const errors = s.errors + 1
  if (errors < policy.errorThreshold || s.until > now) return [{ ...s, errors }, Option.none()]
  const until = now + policy.errorMs
  return [
    { ...s, errors, since: now, until, reason: "errors", generation: s.generation + 1 },
    Option.some({ reason: "errors", durationMs: policy.errorMs, until, streak: s.streak })
  ]
}

/** The backend refused Sidecar's key (401/403): ejected for `error_ms` at once, it will not heal by retrying. */
export const onKeyRejected = (s: CooldownState, policy: CooldownPolicy, now: number): Transition => {
  const until = Math.max(s.until, now + policy.errorMs)
  return [
    { ...s, errors: s.errors + 1, since: now, until, reason: "errors", generation: s.generation + 1 },
    Option.some({ reason: "errors", durationMs: until - now, until, streak: s.streak })
  ]
}
