// After the commit point (SPEC §1): who continues a broken stream, within max_continuations, on
// TestClock over the in-memory adapters and a scripted upstream — and the one StreamBroken / one
// StreamContinuation each break emits.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"
import * as Continuation from "../../src/domain/Continuation.js"
import * as Cooldown from "../../src/domain/Cooldown.js"
import { FleetStore } from "../../src/domain/ports/FleetStore.js"
import type { ProxyRequest } from "../../src/domain/ProxyRequest.js"
import { makeRequestContext } from "../../src/domain/RequestContext.js"
import { type Env, setup } from "./harness.js"

/** The client's request, and the continuation the data plane built from it (a distinct object). */
const original: ProxyRequest = { id: "r1", model: "m" }
const continuation: ProxyRequest & { readonly prefill: string } = { id: "r1", model: "m", prefill: "Hello" }

/** A break as ServedStream reports it; `attempts`: the request's attempts so far (its context's count). */
type Broken = Omit<Continuation.BrokenStream, "ctx"> & { readonly attempts: number }

const broken = (env: Env, over: Partial<Broken> = {}): Continuation.BrokenStream => {
  const { attempts = 1, ...rest } = over
  const ctx = makeRequestContext(original, [], 0)
  ctx.attempts = attempts
  return { ctx, phase: "direct", broken: env.backend("p1"), kind: "cut", continuation: Option.some(continuation), continuations: 0, ...rest }
}

/** continueStream, with the request's attempt count after it (read from its context, as ServedStream does). */
const continueStream = (b: Continuation.BrokenStream) =>
  Effect.map(Continuation.continueStream(b), (r) => ({ ...r, attempts: b.ctx.attempts }))

type ContinuationResult = Effect.Effect.Success<ReturnType<typeof continueStream>>

/** Puts a backend in a rate-limit cooldown until `until` (epoch ms). */
const coolUntil = (id: string, until: number) =>
  Effect.flatMap(FleetStore, (fleet) =>
    fleet.restoreCooldowns(
      new Map([[id, { ...Cooldown.healthy, streak: 1, lastMs: until, until, reason: "rate_limited" as const, generation: 1 }]])
    ))

/** The break's two events, without their instants: exactly one of each is required. */
const outcomeEvents = (env: Env) => {
  const brokenEvents = env.tagged("StreamBroken")
  const continuations = env.tagged("StreamContinuation")
  expect(brokenEvents).toHaveLength(1)
  expect(continuations).toHaveLength(1)
  const { at: _a, ...b } = brokenEvents[0]!
  const { at: _c, ...c } = continuations[0]!
  return { broken: b, continuation: c }
}

const abandoned = (r: ContinuationResult) => {
  if (r._tag !== "Abandoned") throw new Error(`expected Abandoned, got ${r._tag}`)
  return r
}

const continued = (r: ContinuationResult) => {
  if (r._tag !== "Continued") throw new Error(`expected Continued, got ${r._tag}: ${r.outcome}`)
  return r
}

const capable = { prefill_continuation: true }

describe("no_backend", () => {
  it.effect("no enabled capable backend serving the model in routing.pools: nothing is sent", () => {
    const env = setup({
      backends: [
        { id: "p1", pool: "primary" },
        { id: "p2", pool: "primary" },
        { id: "p3", pool: "primary", ...capable, enabled: false },
        { id: "p4", pool: "primary", ...capable, models: { other: {} } },
        { id: "x1", pool: "elsewhere", ...capable }
      ]
    })
    return Effect.gen(function*() {
      const r = abandoned(yield* continueStream(broken(env)))
      expect(r).toMatchObject({ outcome: "no_backend", attempts: 1, continuations: 0 })
      expect(env.calls).toEqual([])
      expect(env.usage).toEqual([])
      expect(outcomeEvents(env)).toEqual({
        broken: { _tag: "StreamBroken", requestId: "r1", backend: "p1", pool: "primary", kind: "cut" },
        continuation: { _tag: "StreamContinuation", requestId: "r1", outcome: "no_backend", kind: "cut", backend: undefined, tries: 0 }
      })
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("the only capable backends are cooling or at their rpm: no_backend, none tried, not even a non-capable free one", () => {
    const env = setup({
      backends: [
        { id: "p1", pool: "primary", ...capable },
        { id: "p2", pool: "primary" },
        { id: "f1", pool: "fallback", ...capable, rpm: 1 }
      ]
    })
    return Effect.gen(function*() {
      yield* coolUntil("p1", 10_000)
      const fleet = yield* FleetStore
      yield* fleet.pick({ model: "m", pools: ["fallback"], mode: "direct", only: "f1" }) // f1's one send this minute
      const r = abandoned(yield* continueStream(broken(env, { attempts: 3, continuations: 1 })))
      expect(r).toMatchObject({ outcome: "no_backend", attempts: 3, continuations: 1 })
      expect(env.calls).toEqual([])
      expect(outcomeEvents(env).continuation).toMatchObject({ outcome: "no_backend", backend: undefined, tries: 0 })
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a capable backend becomes free when its cooldown ends", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary", ...capable }] })
    return Effect.gen(function*() {
      yield* coolUntil("p1", 10_000)
      yield* TestClock.adjust("9999 millis")
      expect(abandoned(yield* continueStream(broken(env))).outcome).toBe("no_backend")
      yield* TestClock.adjust("1 millis")
      const r = continued(yield* continueStream(broken(env)))
      expect(r.backend.id).toBe("p1")
      expect(env.calls.map((c) => [c.at, c.backend])).toEqual([[10_000, "p1"]])
    }).pipe(Effect.provide(env.layer))
  })
})

describe("limit_reached and not_continuable", () => {
  it.effect("limit_reached: the request already used routing.max_continuations (default 2)", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary", ...capable }] })
    return Effect.gen(function*() {
      const r = abandoned(yield* continueStream(broken(env, { attempts: 4, continuations: 2, kind: "stall" })))
      expect(r).toMatchObject({ outcome: "limit_reached", attempts: 4, continuations: 2 })
      expect(env.calls).toEqual([])
      expect(outcomeEvents(env)).toEqual({
        broken: { _tag: "StreamBroken", requestId: "r1", backend: "p1", pool: "primary", kind: "stall" },
        continuation: { _tag: "StreamContinuation", requestId: "r1", outcome: "limit_reached", kind: "stall", backend: undefined, tries: 0 }
      })
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("limit_reached with max_continuations 0 (continuation off) and 1 used of 1", () => {
    const off = setup({ backends: [{ id: "p1", pool: "primary", ...capable }], policy: { routing: { max_continuations: 0 } } })
    const one = setup({ backends: [{ id: "p1", pool: "primary", ...capable }], policy: { routing: { max_continuations: 1 } } })
    return Effect.gen(function*() {
      expect(abandoned(yield* Effect.provide(continueStream(broken(off)), off.layer)).outcome).toBe("limit_reached")
      expect(off.calls).toEqual([])
      expect(outcomeEvents(off).continuation.outcome).toBe("limit_reached")
      const r = abandoned(yield* Effect.provide(continueStream(broken(one, { continuations: 1, attempts: 2 })), one.layer))
      expect(r).toMatchObject({ outcome: "limit_reached", attempts: 2, continuations: 1 })
      expect(one.calls).toEqual([])
    })
  })

  it.effect("not_continuable: the answer is not plain text, though a capable backend is free", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary", ...capable }] })
    return Effect.gen(function*() {
      const r = abandoned(yield* continueStream(broken(env, { continuation: Option.none(), kind: "reset" })))
      expect(r).toMatchObject({ outcome: "not_continuable", attempts: 1, continuations: 0 })
      expect(env.calls).toEqual([])
      expect(outcomeEvents(env)).toEqual({
        broken: { _tag: "StreamBroken", requestId: "r1", backend: "p1", pool: "primary", kind: "reset" },
        continuation: { _tag: "StreamContinuation", requestId: "r1", outcome: "not_continuable", kind: "reset", backend: undefined, tries: 0 }
      })
    }).pipe(Effect.provide(env.layer))
  })
})

describe("continued", () => {
  it.effect("the broken backend goes first when it is capable and free, even when another comes first in the pool", () => {
    const env = setup({
      backends: [
        { id: "p2", pool: "primary", ...capable },
        { id: "p1", pool: "primary", ...capable, models: { m: { upstream: "vendor/m" } } }
      ],
      scripts: { p1: [{ latency: 250 }] }
    })
    return Effect.gen(function*() {
      yield* TestClock.adjust("1000 millis")
      const fiber = yield* Effect.fork(continueStream(broken(env, { phase: "primary_wait", attempts: 2 })))
      yield* TestClock.adjust("249 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const r = continued(yield* Fiber.join(fiber))
      expect(r.backend.id).toBe("p1")
      expect(r.response.status).toBe(200)
      expect([r.attempts, r.continuations]).toEqual([3, 1])
      expect(r.record).toEqual({
        requestId: "r1",
        at: 1000,
        backend: "p1",
        pool: "primary",
        model: "m",
        upstreamModel: "vendor/m",
        phase: "primary_wait",
        attempt: 3,
        status: 200,
        outcome: "success",
        errorClass: "Success",
        firstByteMs: 250,
        durationMs: 250,
        promptTokens: undefined,
        completionTokens: undefined,
        costUsd: undefined
      })
      // What was sent is the continuation, not the client's original request.
      expect(env.sent.map((s) => [s.backend.id, s.request, s.attempt, s.phase, s.upstreamModel])).toEqual([
        ["p1", continuation, 3, "primary_wait", "vendor/m"]
      ])
      expect(env.sent[0]!.request).toBe(continuation)
      // A served attempt's usage row is written when its body ends, not now.
      expect(env.usage).toEqual([])
      expect(env.tagged("AttemptFinished").map((e) => e.record)).toEqual([r.record])
      expect(outcomeEvents(env)).toEqual({
        broken: { _tag: "StreamBroken", requestId: "r1", backend: "p1", pool: "primary", kind: "cut" },
        continuation: { _tag: "StreamContinuation", requestId: "r1", outcome: "continued", kind: "cut", backend: "p1", tries: 1 }
      })
      expect(env.tagged("StreamBroken")[0]!.at).toBe(1000)
      expect(env.tagged("StreamContinuation")[0]!.at).toBe(1250)
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("the broken backend cooling: another capable backend, pools in order (not configuration order), non-capable skipped", () => {
    const env = setup({
      backends: [
        { id: "f1", pool: "fallback", ...capable },
        { id: "f2", pool: "fallback", ...capable },
        { id: "p1", pool: "primary", ...capable },
        { id: "p2", pool: "primary" },
        { id: "p3", pool: "primary", ...capable }
      ]
    })
    return Effect.gen(function*() {
      yield* coolUntil("p1", 60_000)
      const r = continued(yield* continueStream(broken(env)))
      expect(r.backend.id).toBe("p3")
      expect([r.attempts, r.continuations, r.record.attempt, r.record.pool]).toEqual([2, 1, 2, "primary"])
      expect(env.calledBackends()).toEqual(["p3"])
      expect(outcomeEvents(env).continuation).toMatchObject({ outcome: "continued", backend: "p3", tries: 1 })
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("routing.pools order rules: fallback listed first is tried first", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "p2", pool: "primary", ...capable }, { id: "f1", pool: "fallback", ...capable }],
      policy: { routing: { pools: ["fallback", "primary"] } }
    })
    return Effect.gen(function*() {
      expect(continued(yield* continueStream(broken(env))).backend.id).toBe("f1")
      expect(env.calledBackends()).toEqual(["f1"])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a broken backend that is not capable is never sent the continuation: a capable one finishes its answer", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary" }, { id: "p2", pool: "primary" }, { id: "f1", pool: "fallback", ...capable }]
    })
    return Effect.gen(function*() {
      const r = continued(yield* continueStream(broken(env)))
      expect(r.backend.id).toBe("f1")
      expect(env.calledBackends()).toEqual(["f1"])
      expect(outcomeEvents(env)).toEqual({
        broken: { _tag: "StreamBroken", requestId: "r1", backend: "p1", pool: "primary", kind: "cut" },
        continuation: { _tag: "StreamContinuation", requestId: "r1", outcome: "continued", kind: "cut", backend: "f1", tries: 1 }
      })
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("after failed tries: tries, attempts and continuations count every try", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary", ...capable }, { id: "p2", pool: "primary", ...capable }],
      scripts: { p1: [{ status: 503 }] },
      policy: { routing: { max_continuations: 3 } }
    })
    return Effect.gen(function*() {
      const r = continued(yield* continueStream(broken(env, { attempts: 5, continuations: 1 })))
      expect(r.backend.id).toBe("p2")
      expect([r.attempts, r.continuations, r.record.attempt]).toEqual([7, 3, 7])
      expect(env.calls.map((c) => [c.backend, c.attempt])).toEqual([["p1", 6], ["p2", 7]])
      expect(env.usage.map((u) => [u.backend, u.attempt, u.status, u.outcome])).toEqual([["p1", 6, 503, "server_error"]])
      expect(outcomeEvents(env).continuation).toMatchObject({ outcome: "continued", backend: "p2", tries: 2 })
    }).pipe(Effect.provide(env.layer))
  })
})

describe("failed", () => {
  it.effect("max_continuations tries, each failing: recorded and reported, the 400 included; no third backend is tried", () => {
    const env = setup({
      backends: [
        { id: "p1", pool: "primary", ...capable },
        { id: "p2", pool: "primary", ...capable },
        { id: "f1", pool: "fallback", ...capable }
      ],
      scripts: { p1: [{ status: 400 }], p2: [{ status: 500 }] }
    })
    return Effect.gen(function*() {
      const r = abandoned(yield* continueStream(broken(env, { attempts: 2 })))
      expect(r).toMatchObject({ outcome: "failed", attempts: 4, continuations: 2 })
      expect(env.calledBackends()).toEqual(["p1", "p2"])
      expect(env.usage.map((u) => [u.requestId, u.backend, u.phase, u.attempt, u.status, u.outcome, u.errorClass])).toEqual([
        ["r1", "p1", "direct", 3, 400, "client_error", "CallerFault"],
        ["r1", "p2", "direct", 4, 500, "server_error", "Transient"]
      ])
      expect(env.sent.every((s) => s.request === continuation)).toBe(true)
      expect(outcomeEvents(env).continuation).toEqual({
        _tag: "StreamContinuation",
        requestId: "r1",
        outcome: "failed",
        kind: "cut",
        backend: undefined,
        tries: 2
      })
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("a 429 starts the backend's cooldown; a timeout is waited out on the clock, then the next backend", () => {
    const env = setup({
      backends: [
        { id: "p1", pool: "primary", ...capable },
        { id: "p2", pool: "primary", ...capable, first_token_timeout_ms: 1500 },
        { id: "f1", pool: "fallback", ...capable }
      ],
      scripts: { p1: [{ status: 429, retry_after: 30 }], p2: [{ timeout: "first_token" }], f1: [{ status: 401 }] },
      policy: { routing: { max_continuations: 3 } }
    })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(continueStream(broken(env)))
      yield* TestClock.adjust("1499 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const r = abandoned(yield* Fiber.join(fiber))
      expect(r).toMatchObject({ outcome: "failed", attempts: 4, continuations: 3 })
      expect(env.calls.map((c) => [c.at, c.backend])).toEqual([[0, "p1"], [0, "p2"], [1500, "f1"]])
      expect(env.usage.map((u) => [u.backend, u.attempt, u.outcome, u.errorClass, u.durationMs])).toEqual([
        ["p1", 2, "rate_limited", "RateLimited", 0],
        ["p2", 3, "timeout", "Timeout", 1500],
        ["f1", 4, "client_error", "KeyRejected", 0]
      ])
      expect(env.tagged("BackendCooldown").map((c) => [c.backend, c.reason, c.until])).toEqual([
        ["p1", "rate_limited", 30_000],
        ["f1", "errors", 11_500]
      ])
      expect(outcomeEvents(env).continuation).toMatchObject({ outcome: "failed", tries: 3, backend: undefined })
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("every capable backend tried once, fewer than max_continuations: failed, and non-capable ones never sent anything", () => {
    const env = setup({
      backends: [
        { id: "p1", pool: "primary" },
        { id: "p2", pool: "primary" },
        { id: "f1", pool: "fallback", ...capable },
        { id: "f2", pool: "fallback" }
      ],
      scripts: { f1: [{ status: 400 }] },
      policy: { routing: { max_continuations: 5 } }
    })
    return Effect.gen(function*() {
      const r = abandoned(yield* continueStream(broken(env)))
      expect(r).toMatchObject({ outcome: "failed", attempts: 2, continuations: 1 })
      expect(env.calledBackends()).toEqual(["f1"])
      expect(env.usage.map((u) => [u.backend, u.status])).toEqual([["f1", 400]])
      expect(outcomeEvents(env).continuation).toMatchObject({ outcome: "failed", tries: 1 })
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("the same backend is not tried twice in one break, even with tries left", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary", ...capable }],
      scripts: { p1: [{ status: 502, times: 1 }] },
      policy: { routing: { max_continuations: 4 } }
    })
    return Effect.gen(function*() {
      const r = abandoned(yield* continueStream(broken(env)))
      expect(r).toMatchObject({ outcome: "failed", attempts: 2, continuations: 1 })
      expect(env.calledBackends()).toEqual(["p1"])
    }).pipe(Effect.provide(env.layer))
  })
})

describe("across breaks", () => {
  it.effect("each call emits one StreamBroken and one StreamContinuation; continuations carry over to limit_reached", () => {
    const env = setup({
      backends: [{ id: "p1", pool: "primary", ...capable }, { id: "p2", pool: "primary", ...capable }],
      scripts: { p1: [{ status: 500, times: 1 }] }
    })
    return Effect.gen(function*() {
      const first = continued(yield* continueStream(broken(env)))
      expect([first.backend.id, first.attempts, first.continuations]).toEqual(["p2", 3, 2])
      // The continuation on p2 breaks in turn: the request has used both of its continuations.
      const second = abandoned(yield* continueStream(broken(env, {
        broken: first.backend,
        attempts: first.attempts,
        continuations: first.continuations
      })))
      expect(second).toMatchObject({ outcome: "limit_reached", attempts: 3, continuations: 2 })
      expect(env.tagged("StreamBroken").map((e) => e.backend)).toEqual(["p1", "p2"])
      expect(env.tagged("StreamContinuation").map((e) => [e.outcome, e.backend, e.tries])).toEqual([
        ["continued", "p2", 2],
        ["limit_reached", undefined, 0]
      ])
    }).pipe(Effect.provide(env.layer))
  })

  it.effect("the client leaving during a continuation attempt: a cancelled row, and still exactly one StreamContinuation", () => {
    const env = setup({ backends: [{ id: "p1", pool: "primary", ...capable }], scripts: { p1: [{ latency: 5000 }] } })
    return Effect.gen(function*() {
      const fiber = yield* Effect.fork(continueStream(broken(env)))
      yield* TestClock.adjust("2000 millis")
      yield* Fiber.interrupt(fiber)
      expect(env.usage.map((u) => [u.backend, u.attempt, u.outcome, u.durationMs])).toEqual([["p1", 2, "cancelled", 2000]])
      expect(env.tagged("StreamBroken")).toHaveLength(1)
      // SPEC: exactly one outcome per break, so that breaks = Σ continuations on the dashboard.
      expect(env.tagged("StreamContinuation").map((e) => [e.outcome, e.backend, e.tries])).toEqual([["client_closed", undefined, 1]])
    }).pipe(Effect.provide(env.layer))
  })
})
