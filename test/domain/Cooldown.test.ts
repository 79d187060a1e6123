// Cooldown: 429 streaks (hint, base, escalation, cap, same-episode rule), 2xx resets (and stale
// 2xx ignored), error-threshold ejection (fixed, half-open) and key rejection — SPEC §1 steps 4-5.
import { describe, expect, it } from "@effect/vitest"
import { Option, Schema } from "effect"
import {
  type CooldownState,
  healthy,
  isCooling,
  onError,
  onKeyRejected,
  onRateLimited,
  onSuccess
} from "../../src/domain/Cooldown.js"
import { type CooldownPolicy, PolicyConfig } from "../../src/domain/Policy.js"

const policyOf = (cooldown: Record<string, unknown> = {}): CooldownPolicy =>
  Schema.decodeUnknownSync(PolicyConfig)({ cooldown: { base_ms: 5000, ...cooldown } }).cooldown

const policy = policyOf()
const none = Option.none<number>()

/** A 429 for an attempt sent under the state's current generation (a fresh send). */
const fresh429 = (s: CooldownState, now: number, hint: Option.Option<number> = none, p = policy) =>
  onRateLimited(s, p, hint, s.generation, now)

/** Consecutive fresh 429s, each arriving the moment the previous cooldown ends. Returns the durations. */
const streakDurations = (count: number, p = policy, hints: ReadonlyArray<Option.Option<number>> = []) => {
  let s = healthy
  let now = 0
  const out: Array<number> = []
  for (let i = 0; i < count; i++) {
    const [next, started] = fresh429(s, now, hints[i] ?? none, p)
    out.push(Option.getOrThrow(started).durationMs)
    s = next
    now = s.until
  }
  return out
}

describe("a first 429", () => {
  it("without a hint lasts base_ms", () => {
    const [s, started] = fresh429(healthy, 1000)
    expect(s).toEqual({ streak: 1, lastMs: 5000, since: 1000, until: 6000, reason: "rate_limited", errors: 0, generation: 1 })
    expect(started).toEqual(Option.some({ reason: "rate_limited", durationMs: 5000, until: 6000, streak: 1 }))
    expect(isCooling(s, 5999)).toBe(true)
    expect(isCooling(s, 6000)).toBe(false)
  })

  it("with a hint lasts the hint when honor_retry_after is true", () => {
    const [s, started] = fresh429(healthy, 1000, Option.some(2000))
    expect(s.until).toBe(3000)
    expect(s.lastMs).toBe(2000)
    expect(Option.getOrThrow(started).durationMs).toBe(2000)
  })

  it("with a hint lasts base_ms when honor_retry_after is false", () => {
    const [s, started] = fresh429(healthy, 1000, Option.some(2000), policyOf({ honor_retry_after: false }))
    expect(s.until).toBe(6000)
    expect(Option.getOrThrow(started).durationMs).toBe(5000)
  })

  it("a hint longer than max_ms is capped", () => {
    const [s] = fresh429(healthy, 0, Option.some(999_999))
    expect(s.until).toBe(300_000)
    expect(s.lastMs).toBe(300_000)
  })
})

describe("escalation", () => {
  it("5s, 10s, 20s, ... capped at max_ms", () => {
    expect(streakDurations(9)).toEqual([5000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000])
  })

  it("uses the configured multiplier and cap", () => {
    expect(streakDurations(5, policyOf({ base_ms: 1000, multiplier: 3, max_ms: 20_000 }))).toEqual([1000, 3000, 9000, 20_000, 20_000])
  })

  it("a hint larger than the escalation wins: max(previous × multiplier, hint)", () => {
    expect(streakDurations(3, policy, [none, Option.some(30_000), none])).toEqual([5000, 30_000, 60_000])
  })

  it("a hint smaller than the escalation does not shorten it", () => {
    expect(streakDurations(3, policy, [none, Option.some(1000), Option.some(1000)])).toEqual([5000, 10_000, 20_000])
  })

  it("the cap applies to an escalating hint", () => {
    expect(streakDurations(2, policy, [none, Option.some(400_000)])).toEqual([5000, 300_000])
  })

  it("a hint ignored when honor_retry_after is false, also in escalation", () => {
    expect(streakDurations(2, policyOf({ honor_retry_after: false }), [none, Option.some(30_000)])).toEqual([5000, 10_000])
  })

  it("a fresh 429 during a cooldown in force (an emergency send) escalates and never shortens it", () => {
    const [s1] = fresh429(healthy, 0, Option.some(60_000)) // until 60 000
    const [s2, started] = fresh429(s1, 1000) // max(60 000 × 2, 0) = 120 000 → until 121 000
    expect(s2.streak).toBe(2)
    expect(s2.until).toBe(121_000)
    expect(Option.getOrThrow(started).durationMs).toBe(120_000)
  })
})

describe("2xx", () => {
  it("ends the streak (the next 429 is base again) but not a cooldown in force", () => {
    const [s1] = fresh429(healthy, 0) // 5s
    const [s2] = fresh429(s1, 5000) // 10s, until 15 000
    const s3 = onSuccess(s2, s2.generation)
    expect(s3).toEqual({ ...s2, streak: 0, lastMs: 0, errors: 0 })
    expect(isCooling(s3, 14_999)).toBe(true)
    expect(s3.until).toBe(15_000)
    const [s4, started] = fresh429(s3, 15_000)
    expect(Option.getOrThrow(started)).toEqual({ reason: "rate_limited", durationMs: 5000, until: 20_000, streak: 1 })
    expect(s4.streak).toBe(1)
  })

  it("sent under an older generation (before the cooldown began) changes nothing", () => {
    const [s1] = fresh429(healthy, 0)
    const s2 = onSuccess(s1, 0)
    expect(s2).toBe(s1)
    const [, started] = fresh429(s2, 5000)
    expect(Option.getOrThrow(started).durationMs).toBe(10_000) // the streak went on
  })

  it("on a healthy state returns the same state", () => {
    expect(onSuccess(healthy, 0)).toBe(healthy)
  })
})

describe("the same-episode rule", () => {
  const [cooling] = fresh429(healthy, 0) // generation 1, until 5000

  it("a 429 sent under an older generation without a hint changes nothing", () => {
    const [s, started] = onRateLimited(cooling, policy, none, 0, 100)
    expect(s).toBe(cooling)
    expect(started).toEqual(Option.none())
  })

  it("a 429 sent under an older generation does not escalate, whatever arrives", () => {
    let s = cooling
    for (let t = 100; t < 1000; t += 100) s = onRateLimited(s, policy, none, 0, t)[0]
    expect(s.streak).toBe(1)
    expect(s.until).toBe(5000)
    expect(s.generation).toBe(1)
  })

  it("may lengthen the cooldown to its own hint, without escalating", () => {
    const [s, started] = onRateLimited(cooling, policy, Option.some(8000), 0, 100)
    expect(s.until).toBe(8100)
    expect(s.streak).toBe(1)
    expect(s.generation).toBe(1)
    expect(started).toEqual(Option.some({ reason: "rate_limited", durationMs: 8000, until: 8100, streak: 1 }))
  })

  it("a shorter hint does not shorten the cooldown", () => {
    const [s, started] = onRateLimited(cooling, policy, Option.some(1000), 0, 100)
    expect(s).toBe(cooling)
    expect(started).toEqual(Option.none())
  })

  it("its hint is capped at max_ms", () => {
    const [s] = onRateLimited(cooling, policy, Option.some(10_000_000), 0, 100)
    expect(s.until).toBe(300_100)
  })

  it("its hint is ignored when honor_retry_after is false", () => {
    const [s] = onRateLimited(cooling, policyOf({ honor_retry_after: false }), Option.some(8000), 0, 100)
    expect(s).toBe(cooling)
  })
})

describe("errors", () => {
  const errors = (s: CooldownState, times: number, now: number, p = policy) => {
    let out = s
    for (let i = 0; i < times; i++) out = onError(out, p, now)[0]
    return out
  }

  it("below error_threshold: counted, no cooldown", () => {
    const s = errors(healthy, 2, 0)
    expect(s).toEqual({ ...healthy, errors: 2 })
  })

  it("at error_threshold: ejected for error_ms", () => {
    const s2 = errors(healthy, 2, 0)
    const [s3, started] = onError(s2, policy, 1000)
    expect(s3).toEqual({ streak: 0, lastMs: 0, since: 1000, until: 11_000, reason: "errors", errors: 3, generation: 1 })
    expect(started).toEqual(Option.some({ reason: "errors", durationMs: 10_000, until: 11_000, streak: 0 }))
  })

  it("errors during the ejection are counted but do not extend it", () => {
    const s3 = errors(healthy, 3, 0) // until 10 000
    const [s4, started] = onError(s3, policy, 5000)
    expect(started).toEqual(Option.none())
    expect(s4.until).toBe(10_000)
    expect(s4.errors).toBe(4)
  })

  it("half-open: a further error right after the ejection ends ejects again, for the same fixed error_ms", () => {
    const s3 = errors(healthy, 3, 0) // until 10 000
    const [s4, started] = onError(s3, policy, 10_000)
    expect(started).toEqual(Option.some({ reason: "errors", durationMs: 10_000, until: 20_000, streak: 0 }))
    expect(s4.errors).toBe(4)
    expect(s4.generation).toBe(2)
    const [s5, again] = onError(s4, policy, 20_000)
    expect(Option.getOrThrow(again).durationMs).toBe(10_000) // no escalation
    expect(s5.until).toBe(30_000)
  })

  it("a 2xx after the ejection resets the count: the next error does not eject", () => {
    const s3 = errors(healthy, 3, 0)
    const ok = onSuccess(s3, s3.generation)
    expect(ok.errors).toBe(0)
    const [s4, started] = onError(ok, policy, 10_000)
    expect(started).toEqual(Option.none())
    expect(s4.errors).toBe(1)
  })

  it("a 429 resets the error count", () => {
    const s2 = errors(healthy, 2, 0)
    const [limited] = fresh429(s2, 0) // until 5000
    expect(limited.errors).toBe(0)
    const [after, started] = onError(limited, policy, 5000)
    expect(started).toEqual(Option.none())
    expect(after.errors).toBe(1)
  })

  it("reaching the threshold during a 429 cooldown does not eject; the next error after it does", () => {
    const [limited] = fresh429(healthy, 0) // until 5000
    const s3 = errors(limited, 3, 1000)
    expect(s3.until).toBe(5000)
    expect(s3.reason).toBe("rate_limited")
    const [s4, started] = onError(s3, policy, 5000)
    expect(started).toEqual(Option.some({ reason: "errors", durationMs: 10_000, until: 15_000, streak: 1 }))
    expect(s4.reason).toBe("errors")
  })

  it("uses error_threshold and error_ms from the policy", () => {
    const p = policyOf({ error_threshold: 1, error_ms: 2500 })
    const [s, started] = onError(healthy, p, 100)
    expect(s.until).toBe(2600)
    expect(Option.getOrThrow(started).durationMs).toBe(2500)
  })
})

describe("key rejected (401/403)", () => {
  it("ejects at once for error_ms", () => {
    const [s, started] = onKeyRejected(healthy, policy, 1000)
    expect(s).toEqual({ streak: 0, lastMs: 0, since: 1000, until: 11_000, reason: "errors", errors: 1, generation: 1 })
    expect(started).toEqual(Option.some({ reason: "errors", durationMs: 10_000, until: 11_000, streak: 0 }))
  })

  it("never shortens a longer cooldown in force", () => {
    const [limited] = fresh429(healthy, 0, Option.some(60_000))
    const [s, started] = onKeyRejected(limited, policy, 1000)
    expect(s.until).toBe(60_000)
    expect(Option.getOrThrow(started).durationMs).toBe(59_000)
  })
})
