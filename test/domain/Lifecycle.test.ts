// The request lifecycle on TestClock (SPEC §1): direct phase with wait-if-short and peers, Primary-Wait,
// emergency, exhausted; usage rows, cancellation and attempt counts — over the in-memory adapters.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"
import * as Lifecycle from "../../src/domain/Lifecycle.js"
import type { Served } from "../../src/domain/RequestOutcome.js"
import { setup } from "./harness.js"

const request = { id: "r1", model: "m" }
const handle = Lifecycle.handle(request)

const asServed = (o: Lifecycle.RequestOutcome): Served => {
  if (o._tag !== "Served") throw new Error(`expected Served, got ${o._tag}`)
  return o
}

const stillWaiting = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.map(Fiber.poll(fiber), (p) => expect(Option.isNone(p)).toBe(true))

describe("direct phase", () => {
  it.effect("wait if short: a 429 with Retry-After 2 → still pending at 1999 ms, served by the same backend at 2000 ms", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary" }], scripts: { p1: [{ status: 429, retry_after: 2, times: 1 }] } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("1999 millis")
      yield* stillWaiting(fiber)
      yield* TestClock.adjust("1 millis")
      const out = yield* Fiber.join(fiber)
      expect(out).toMatchObject({ _tag: "Served", backend: "p1", pool: "primary", phase: "direct", attempts: 2, startedAt: 0 })
      expect(out.response.status).toBe(200)
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [2000, "p1", "direct"]])
      expect(env.tagged("WaitIfShort")).toEqual([{ at: 0, _tag: "WaitIfShort", requestId: "r1", backend: "p1", waitMs: 2000 }])
      expect(env.tagged("BackendCooldown").map((e) => [e.backend, e.reason, e.durationMs, e.until])).toEqual([
        ["p1", "rate_limited", 2000, 2000]
      ])
      expect(env.count("PrimaryWaitEntered")).toBe(0)
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("fail over if long: a 429 longer than wait_if_shorter_than_ms moves to the fallback at once", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "f1", pool: "fallback" }],
      scripts: { p1: [{ status: 429, retry_after: 4, times: 1 }] }
    })
    return Effect.gen(function*() {
      const out = yield* handle
      expect(out).toMatchObject({ _tag: "Served", backend: "f1", pool: "fallback", phase: "direct", attempts: 2 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [0, "f1", "direct"]])
      expect(env.count("WaitIfShort")).toBe(0)
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("the peer rule: a primary 429s with a 2 s hint → the other primary serves at once, no wait", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "p2", pool: "primary" }, { id: "f1", pool: "fallback" }],
      scripts: { p1: [{ status: 429, retry_after: 2, times: 1 }] }
    })
    return Effect.gen(function*() {
      const out = yield* handle
      expect(out).toMatchObject({ _tag: "Served", backend: "p2", pool: "primary", phase: "direct", attempts: 2 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [0, "p2", "direct"]])
      expect(env.count("WaitIfShort")).toBe(0)
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a short 429 outside the best pool is not waited for", () => {
    // p1 (primary, the best pool) refuses the key and is ejected for 10 s; f1's 2 s cooldown is not
    // waited for in the direct phase: the request goes to Primary-Wait and p1 serves at 10 s.
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "f1", pool: "fallback" }],
      scripts: { p1: [{ status: 401, times: 1 }], f1: [{ status: 429, retry_after: 2 }] }
    })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("9999 millis")
      yield* stillWaiting(fiber)
      yield* TestClock.adjust("1 millis")
      const out = yield* Fiber.join(fiber)
      expect(out).toMatchObject({ _tag: "Served", backend: "p1", phase: "primary_wait", attempts: 3 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [0, "f1", "direct"], [10_000, "p1", "primary_wait"]])
      expect(env.count("WaitIfShort")).toBe(0)
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a transient error is retried once on the same backend, then the request moves on", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "p2", pool: "primary" }],
      scripts: { p1: [{ status: 502 }] }
    })
    return Effect.gen(function*() {
      const out = yield* handle
      expect(out).toMatchObject({ _tag: "Served", backend: "p2", attempts: 3 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [0, "p1", "direct"], [0, "p2", "direct"]])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a connection reset is retried on the same backend, and attempts count the retry", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary" }], scripts: { p1: [{ connection: "reset", times: 1 }] } })
    return Effect.gen(function*() {
      const out = yield* handle
      expect(out).toMatchObject({ _tag: "Served", backend: "p1", phase: "direct", attempts: 2 })
      expect(env.usage.map((r) => [r.attempt, r.outcome, r.errorClass, r.status])).toEqual([[1, "connect_error", "Transient", undefined]])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a timeout is never retried on the same backend", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary", timeout_ms: 1000 }, { id: "p2", pool: "primary" }],
      scripts: { p1: [{ timeout: "headers", times: 1 }] }
    })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("1000 millis")
      const out = yield* Fiber.join(fiber)
      expect(out).toMatchObject({ _tag: "Served", backend: "p2", attempts: 2 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [1000, "p2", "direct"]])
      expect(env.usage.map((r) => [r.backend, r.outcome, r.errorClass, r.durationMs])).toEqual([["p1", "timeout", "Timeout", 1000]])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a caller-fault 4xx is passed through as-is: no retry, no fallback, no cooldown", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "p2", pool: "primary" }, { id: "f1", pool: "fallback" }],
      scripts: { p1: [{ status: 404 }] }
    })
    return Effect.gen(function*() {
      const out = yield* handle
      expect(out).toMatchObject({ _tag: "PassedThrough", backend: "p1", phase: "direct", attempts: 1 })
      expect(out.response.status).toBe(404)
      expect(env.calls).toHaveLength(1)
      expect(env.count("BackendCooldown")).toBe(0)
      expect(env.usage.map((r) => [r.outcome, r.errorClass, r.status])).toEqual([["client_error", "CallerFault", 404]])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a next_pool_on 400 tries the next pool", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "p2", pool: "primary" }, { id: "f1", pool: "fallback" }],
      scripts: { p1: [{ status: 400, error_code: "context_length_exceeded" }] }
    })
    return Effect.gen(function*() {
      const out = yield* handle
      expect(out).toMatchObject({ _tag: "Served", backend: "f1", pool: "fallback", attempts: 2 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [0, "f1", "direct"]])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("when every pool answers next_pool_on, the last refusal is returned (phase exhausted)", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "f1", pool: "fallback" }],
      scripts: {
        p1: [{ status: 400, error_code: "context_length_exceeded" }],
        f1: [{ status: 400, error_code: "context_length_exceeded" }]
      }
    })
    return Effect.gen(function*() {
      const out = yield* handle
      expect(out).toMatchObject({ _tag: "PassedThrough", backend: "f1", phase: "exhausted", attempts: 2 })
      expect(out.response.status).toBe(400)
      expect(env.count("PrimaryWaitEntered")).toBe(0)
      expect(env.count("AllPoolsExhausted")).toBe(0)
    }).pipe(Effect.provide(env.layer))
  })
})

describe("limits across requests", () => {
  it.effect("max_attempts counts same-backend retries", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "p2", pool: "primary" }],
      scripts: { p1: [{ status: 500 }] },
      policy: { routing: { max_attempts: 2 } }
    })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("4999 millis")
      yield* stillWaiting(fiber)
      yield* TestClock.adjust("1 millis")
      const out = yield* Fiber.join(fiber)
      expect(out).toMatchObject({ _tag: "Served", backend: "p2", phase: "primary_wait", attempts: 3 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [0, "p1", "direct"], [5000, "p2", "primary_wait"]])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a backend at its rpm is sent nothing in any phase; Retry-After runs to the window's end", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary", rpm: 1 }] })
    return Effect.gen(function*() {
      expect(yield* handle).toMatchObject({ _tag: "Served", backend: "p1", attempts: 1 })
      const fiber = yield* Effect.fork(Effect.flip(Lifecycle.handle({ id: "r2", model: "m" })))
      yield* TestClock.adjust("15 seconds") // three Primary-Wait intervals, then emergency
      const e = yield* Fiber.join(fiber)
      expect(e).toMatchObject({ _tag: "AllPoolsExhausted", attempts: [], retryAfterMs: 45_000 })
      expect(env.calls).toHaveLength(1)
      expect([env.count("PrimaryWaitEntered"), env.count("PrimaryWaitExhausted"), env.count("EmergencyActivated")]).toEqual([1, 1, 1])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("concurrent 429s of one episode start one cooldown, not one per request", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }],
      scripts: { p1: [{ status: 429, latency: 100, times: 2 }] }
    })
    return Effect.gen(function*() {
      const a = yield* Effect.fork(Lifecycle.handle({ id: "a", model: "m" }))
      const b = yield* Effect.fork(Lifecycle.handle({ id: "b", model: "m" }))
      yield* TestClock.adjust("5099 millis")
      yield* stillWaiting(a)
      yield* stillWaiting(b)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(a)).toMatchObject({ _tag: "Served", phase: "primary_wait", attempts: 2 })
      expect(yield* Fiber.join(b)).toMatchObject({ _tag: "Served", phase: "primary_wait", attempts: 2 })
      // Which of the two 429s arrives first at 100 ms is the scheduler's business; there is one cooldown.
      expect(env.tagged("BackendCooldown").map((c) => [c.at, c.durationMs, c.until, c.streak])).toEqual([[100, 5000, 5100, 1]])
      expect(env.calls.map((c) => `${c.at}:${c.requestId}`).sort()).toEqual(["0:a", "0:b", "5100:a", "5100:b"])
    }).pipe(Effect.provide(env.layer))
  })
})

describe("Primary-Wait", () => {
  it.effect("is woken early by a cooldown end: still pending 1 ms before, served at the end", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary" }], scripts: { p1: [{ status: 429, retry_after: 4, times: 1 }] } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("3999 millis")
      yield* stillWaiting(fiber)
      yield* TestClock.adjust("1 millis")
      const out = yield* Fiber.join(fiber)
      expect(out).toMatchObject({ _tag: "Served", backend: "p1", phase: "primary_wait", attempts: 2 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [4000, "p1", "primary_wait"]])
      expect(env.tagged("PrimaryWaitEntered")).toEqual([{ at: 0, _tag: "PrimaryWaitEntered", requestId: "r1", model: "m", pool: "primary" }])
      expect(env.tagged("PrimaryWaitRecovered")).toEqual([
        { at: 4000, _tag: "PrimaryWaitRecovered", requestId: "r1", backend: "p1", waitedMs: 4000 }
      ])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("waits interval_ms per retry while nothing frees, and tries the backend as its cooldown ends", () => {
    // Cooling until 12 s: wakes at 5 s and 10 s (nothing eligible), then at 12 s (the cooldown end).
    const env = setup({ backends: [{ id: "p1", pool: "primary" }], scripts: { p1: [{ status: 429, retry_after: 12, times: 1 }] } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("11999 millis")
      yield* stillWaiting(fiber)
      yield* TestClock.adjust("1 millis")
      const out = yield* Fiber.join(fiber)
      expect(out).toMatchObject({ _tag: "Served", backend: "p1", phase: "primary_wait", attempts: 2 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [12_000, "p1", "primary_wait"]])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("client disconnect during Primary-Wait emits PrimaryWaitAbandoned(client_closed): enter = recovery + exhausted + abandoned", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary" }], scripts: { p1: [{ status: 429, retry_after: 4, times: 1 }] } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("1000 millis")
      yield* stillWaiting(fiber)
      yield* Fiber.interrupt(fiber)
      expect(env.tagged("PrimaryWaitAbandoned")).toEqual([
        { at: 1000, _tag: "PrimaryWaitAbandoned", requestId: "r1", reason: "client_closed" }
      ])
      const [enter, recovery, exhausted, abandoned] = [
        env.count("PrimaryWaitEntered"),
        env.count("PrimaryWaitRecovered"),
        env.count("PrimaryWaitExhausted"),
        env.count("PrimaryWaitAbandoned")
      ]
      expect([enter, recovery, exhausted, abandoned]).toEqual([1, 0, 0, 1])
      expect(enter).toBe(recovery + exhausted + abandoned)
      // Nothing was in flight: only the 429 has a usage row, and no later call was made.
      expect(env.usage.map((r) => r.outcome)).toEqual(["rate_limited"])
      yield* TestClock.adjust("10 seconds")
      expect(env.calls).toHaveLength(1)
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("exhausted Primary-Wait goes to emergency, which ignores the cooldown", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary" }], scripts: { p1: [{ status: 429, retry_after: 60, times: 1 }] } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("14999 millis")
      yield* stillWaiting(fiber)
      yield* TestClock.adjust("1 millis")
      const out = yield* Fiber.join(fiber)
      expect(out).toMatchObject({ _tag: "Served", backend: "p1", phase: "emergency", attempts: 2 })
      expect(env.callTimes()).toEqual([[0, "p1", "direct"], [15_000, "p1", "emergency"]])
      expect(env.tagged("PrimaryWaitExhausted")).toEqual([{ at: 15_000, _tag: "PrimaryWaitExhausted", requestId: "r1", waitedMs: 15_000 }])
      expect([env.count("PrimaryWaitEntered"), env.count("PrimaryWaitExhausted"), env.count("EmergencyActivated"), env.count("EmergencySucceeded")])
        .toEqual([1, 1, 1, 1])
    }).pipe(Effect.provide(env.layer))
  })
})

describe("usage rows and cancellation", () => {
  it.effect("interruption during an in-flight attempt records a usage row with outcome cancelled", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary" }], scripts: { p1: [{ latency: 5000 }] } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("1500 millis")
      yield* stillWaiting(fiber)
      yield* Fiber.interrupt(fiber)
      expect(env.usage).toEqual([{
        requestId: "r1",
        at: 0,
        backend: "p1",
        pool: "primary",
        model: "m",
        upstreamModel: "m",
        phase: "direct",
        attempt: 1,
        status: undefined,
        outcome: "cancelled",
        errorClass: "ClientClosed",
        firstByteMs: undefined,
        durationMs: 1500,
        promptTokens: undefined,
        completionTokens: undefined,
        costUsd: undefined
      }])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("an attempt in flight during Primary-Wait: cancelled row and PrimaryWaitAbandoned", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }],
      scripts: { p1: [{ status: 429, retry_after: 4, times: 1 }, { latency: 3000 }] }
    })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(handle)
      yield* TestClock.adjust("5000 millis") // the Primary-Wait attempt was sent at 4000
      yield* stillWaiting(fiber)
      yield* Fiber.interrupt(fiber)
      expect(env.usage.map((r) => [r.phase, r.outcome, r.attempt, r.at, r.durationMs])).toEqual([
        ["direct", "rate_limited", 1, 0, 0],
        ["primary_wait", "cancelled", 2, 4000, 1000]
      ])
      expect(env.tagged("PrimaryWaitAbandoned").map((e) => e.reason)).toEqual(["client_closed"])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("one row per failed attempt, none for the served one until settleServed, which adds tokens and cost", () => {
    const env = setup({
      backends: [
        { id: "p1", pool: "primary" },
        { id: "p2", pool: "primary", models: { m: { upstream: "vendor/m-large", input_per_mtok: 2, output_per_mtok: 6 } } }
      ],
      scripts: { p1: [{ status: 500, times: 2 }] }
    })
    return Effect.gen(function*() {
      const served = asServed(yield* handle)
      expect(served).toMatchObject({ backend: "p2", attempts: 3, phase: "direct" })
      expect(env.usage.map((r) => [r.backend, r.attempt, r.status, r.outcome, r.errorClass])).toEqual([
        ["p1", 1, 500, "server_error", "Transient"],
        ["p1", 2, 500, "server_error", "Transient"]
      ])
      yield* Lifecycle.settleServed(served, { promptTokens: 1000, completionTokens: 500, durationMs: 10 })
      expect(env.usage).toHaveLength(3)
      const row = env.usage[2]!
      expect(row).toEqual({
        requestId: "r1",
        at: 0,
        backend: "p2",
        pool: "primary",
        model: "m",
        upstreamModel: "vendor/m-large",
        phase: "direct",
        attempt: 3,
        status: 200,
        outcome: "success",
        errorClass: "Success",
        firstByteMs: 0,
        durationMs: 10,
        promptTokens: 1000,
        completionTokens: 500,
        costUsd: expect.closeTo(0.005, 12)
      })
      expect(env.tagged("UsageObserved").map(({ at: _at, _tag, ...u }) => u)).toEqual([
        { backend: "p2", model: "m", promptTokens: 1000, completionTokens: 500, costUsd: expect.closeTo(0.005, 12) }
      ])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("tokens not reported stay undefined (not 0), and no cost is made up", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary", models: { m: { input_per_mtok: 2, output_per_mtok: 6 } } }]
    })
    return Effect.gen(function*() {
      const served = asServed(yield* handle)
      expect(env.usage).toHaveLength(0)
      yield* Lifecycle.settleServed(served, { promptTokens: undefined, completionTokens: undefined, durationMs: 7 })
      const row = env.usage[0]!
      expect([row.promptTokens, row.completionTokens, row.costUsd, row.durationMs]).toEqual([undefined, undefined, undefined, 7])
      expect(env.count("UsageObserved")).toBe(0)
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("only prompt tokens reported: cost from those, completion tokens stay undefined", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary", models: { m: { input_per_mtok: 2, output_per_mtok: 6 } } }]
    })
    return Effect.gen(function*() {
      const served = asServed(yield* handle)
      yield* Lifecycle.settleServed(served, { promptTokens: 1000, completionTokens: undefined, durationMs: 7 })
      const row = env.usage[0]!
      expect(row.promptTokens).toBe(1000)
      expect(row.completionTokens).toBeUndefined()
      expect(row.costUsd).toBeCloseTo(0.002, 12)
    }).pipe(Effect.provide(env.layer))
  })
})

describe("failures", () => {
  it.effect("ModelNotServed when no backend serves the model", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary", models: { other: {} } }] })
    return Effect.gen(function*() {
      const e = yield* Effect.flip(handle)
      expect(e).toMatchObject({ _tag: "ModelNotServed", model: "m" })
      expect(env.calls).toHaveLength(0)
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("AllPoolsExhausted carries every attempt, over every phase, and the time until the backend is free", () => {
    // Always 429, no hint: 5 s, 10 s, 20 s, 40 s cooldowns (at 0, 5 s, 15 s, and 15 s in emergency).
    const env = setup({ backends: [{ id: "p1", pool: "primary" }], scripts: { p1: [{ status: 429 }] } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.flip(handle))
      yield* TestClock.adjust("14999 millis")
      yield* stillWaiting(fiber)
      yield* TestClock.adjust("1 millis")
      const e = yield* Fiber.join(fiber)
      if (e._tag !== "AllPoolsExhausted") throw new Error(`expected AllPoolsExhausted, got ${e._tag}`)
      expect(e.model).toBe("m")
      expect(e.message).toBe("All provider pools exhausted for model m")
      expect(e.attempts).toEqual([
        { backend: "p1", pool: "primary", phase: "direct", outcome: "rate_limited", status: 429 },
        { backend: "p1", pool: "primary", phase: "primary_wait", outcome: "rate_limited", status: 429 },
        { backend: "p1", pool: "primary", phase: "primary_wait", outcome: "rate_limited", status: 429 },
        { backend: "p1", pool: "primary", phase: "emergency", outcome: "rate_limited", status: 429 }
      ])
      expect(env.callTimes()).toEqual([
        [0, "p1", "direct"],
        [5000, "p1", "primary_wait"],
        [15_000, "p1", "primary_wait"],
        [15_000, "p1", "emergency"]
      ])
      expect(env.tagged("BackendCooldown").map((c) => [c.at, c.durationMs, c.streak])).toEqual([
        [0, 5000, 1],
        [5000, 10_000, 2],
        [15_000, 20_000, 3],
        [15_000, 40_000, 4]
      ])
      expect(e.retryAfterMs).toBe(40_000)
      expect(env.tagged("AllPoolsExhausted").map((x) => x.retryAfterMs)).toEqual([40_000])
      expect(env.usage).toHaveLength(4)
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("retryAfterMs is at least 1000 even when a backend is free at once", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }],
      scripts: { p1: [{ status: 503 }] },
      policy: { cooldown: { base_ms: 5000, error_threshold: 100 }, primary_wait: { max_retries: 1 }, emergency: { max_attempts: 1 } }
    })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.flip(handle))
      yield* TestClock.adjust("5000 millis")
      const e = yield* Fiber.join(fiber)
      if (e._tag !== "AllPoolsExhausted") throw new Error(`expected AllPoolsExhausted, got ${e._tag}`)
      expect(e.retryAfterMs).toBe(1000)
      expect(e.attempts.map((a) => [a.phase, a.outcome, a.status])).toEqual([
        ["direct", "server_error", 503],
        ["direct", "server_error", 503],
        ["primary_wait", "server_error", 503],
        ["emergency", "server_error", 503]
      ])
    }).pipe(Effect.provide(env.layer))
  })
})
