// Timers that fire a millisecond before the clock reaches their instant (Node's timers against
// Date.now, measured): the wake at a cooldown's end must not cost the request its try.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Duration, Effect, Fiber, Option, TestClock } from "effect"
import * as Lifecycle from "../../src/domain/Lifecycle.js"
import { sleepUntil } from "../../src/domain/SleepUntil.js"
import { setup } from "./harness.js"

/** `clock`, except that every sleep of more than 1 ms ends 1 ms early. */
const earlyTimers = (clock: Clock.Clock): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => clock.unsafeCurrentTimeMillis(),
  currentTimeMillis: clock.currentTimeMillis,
  unsafeCurrentTimeNanos: () => clock.unsafeCurrentTimeNanos(),
  currentTimeNanos: clock.currentTimeNanos,
  sleep: (d) => {
    const ms = Duration.toMillis(d)
    return clock.sleep(Duration.millis(ms > 1 ? ms - 1 : ms))
  }
})

/** Runs `self` forked on early timers over TestClock, moving virtual time to each next wake. */
const onEarlyTimers = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const fiber = yield* Effect.fork(Effect.withClock(self, earlyTimers(clock)))
    for (let steps = 0; steps < 100 && Option.isNone(yield* Fiber.poll(fiber)); steps++) {
      yield* Effect.yieldNow()
      const wakes = Chunk.toReadonlyArray(yield* TestClock.sleeps())
      if (wakes.length > 0) yield* TestClock.setTime(Math.min(...wakes))
    }
    return yield* Fiber.join(fiber)
  })

describe("sleepUntil", () => {
  it.effect("returns at the instant, not a millisecond before, when the timer fires early", () =>
    Effect.gen(function*() {
      const woke = yield* onEarlyTimers(Effect.zipRight(sleepUntil(100), Clock.currentTimeMillis))
      expect(woke).toBe(100)
    }))

  it.effect("an instant already past returns at once", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("50 millis")
      const woke = yield* Effect.zipRight(sleepUntil(10), Clock.currentTimeMillis)
      expect(woke).toBe(50)
    }))
})

describe("the lifecycle on timers that fire early", () => {
  it.effect("wait if short: the same backend serves at the cooldown's end, it is not given up on", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "f1", pool: "fallback" }],
      scripts: { p1: [{ status: 429, retry_after: 2, times: 1 }] },
      policy: { routing: { pools: ["primary", "fallback"] } }
    })
    return Effect.gen(function*() {
      const out = yield* onEarlyTimers(Lifecycle.handle({ id: "r1", model: "m" }))
      expect(out).toMatchObject({ _tag: "Served", backend: "p1", phase: "direct", attempts: 2 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [2000, "p1", "direct"]])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("Primary-Wait: the wake at the cooldown's end tries the backend, no retry is lost", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }],
      scripts: { p1: [{ status: 429, retry_after: 4, times: 1 }] },
      policy: { primary_wait: { interval_ms: 5000, max_retries: 1 } }
    })
    return Effect.gen(function*() {
      const out = yield* onEarlyTimers(Lifecycle.handle({ id: "r1", model: "m" }))
      expect(out).toMatchObject({ _tag: "Served", backend: "p1", phase: "primary_wait", attempts: 2 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [4000, "p1", "primary_wait"]])
      expect(env.count("PrimaryWaitRecovered")).toBe(1)
    }).pipe(Effect.provide(env.layer))
  })
})
