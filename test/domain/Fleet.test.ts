// Fleet: which backend a pick hands out (pools in order, round-robin, eligibility, `only`,
// emergency limits), when one is next free, and what survives a backend-list change.
import { describe, expect, it } from "@effect/vitest"
import { Option, Schema } from "effect"
import { Backend } from "../../src/domain/Backend.js"
import { FailureClass } from "../../src/domain/FailureClass.js"
import * as Fleet from "../../src/domain/Fleet.js"
import type { PickMode } from "../../src/domain/Phase.js"
import { PolicyConfig } from "../../src/domain/Policy.js"

const backend = (id: string, pool: string, extra: Record<string, unknown> = {}): Backend =>
  Schema.decodeUnknownSync(Backend)({ id, pool, base_url: "http://x/v1", ...extra })

const policyOf = (extra: Record<string, unknown> = {}): PolicyConfig =>
  Schema.decodeUnknownSync(PolicyConfig)({ cooldown: { base_ms: 5000 }, ...extra })

const policy = policyOf()
const POOLS = ["primary", "fallback"]

interface Q {
  readonly model?: string
  readonly pools?: ReadonlyArray<string>
  readonly exclude?: ReadonlySet<string>
  readonly mode?: PickMode
  readonly only?: string
}

const query = (q: Q = {}): Fleet.PickQuery => ({
  model: q.model ?? "m",
  pools: q.pools ?? POOLS,
  exclude: q.exclude,
  mode: q.mode ?? "direct",
  only: q.only
})

/** One pick: the backend id (or undefined) and the next state. */
const pick1 = (s: Fleet.FleetState, now: number, q: Q = {}, p = policy): [string | undefined, Fleet.FleetState] => {
  const [t, next] = Fleet.pick(s, query(q), p, now)
  return [Option.getOrUndefined(Option.map(t, (x) => x.backend.id)), next]
}

/** `n` picks in a row at `now`: the ids picked (undefined when none was eligible) and the final state. */
const picks = (s: Fleet.FleetState, n: number, now: number, q: Q = {}, p = policy) => {
  const out: Array<string | undefined> = []
  let state = s
  for (let i = 0; i < n; i++) {
    const [id, next] = pick1(state, now, q, p)
    out.push(id)
    state = next
  }
  return [out, state] as const
}

/** Puts a backend into a rate-limit cooldown (base 5 s, or the hint) at `now`, without taking a rate slot. */
const cool = (s: Fleet.FleetState, id: string, now: number, hintMs?: number): Fleet.FleetState => {
  const b = s.backends.find((x) => x.id === id)
  if (b === undefined) throw new Error(`no backend ${id}`)
  const ticket: Fleet.Ticket = { backend: b, sentAt: now, generation: Fleet.runtimeOf(s, id).cooldown.generation }
  const hint = hintMs === undefined ? Option.none<number>() : Option.some(hintMs)
  return Fleet.report(s, ticket, FailureClass.RateLimited({ hintMs: hint }), policy, now)[1]
}

describe("pick in the direct phase", () => {
  it("round-robins within a pool: p1, p2, p1, p2", () => {
    const s = Fleet.make([backend("p1", "primary"), backend("p2", "primary")])
    expect(picks(s, 4, 0)[0]).toEqual(["p1", "p2", "p1", "p2"])
  })

  it("round-robin skips an ineligible member and resumes after the one picked", () => {
    const s = Fleet.make([backend("p1", "primary"), backend("p2", "primary", { enabled: false }), backend("p3", "primary")])
    expect(picks(s, 4, 0)[0]).toEqual(["p1", "p3", "p1", "p3"])
  })

  it("pools in order: the fallback is used only when the primary has no eligible backend", () => {
    const s = Fleet.make([backend("f1", "fallback"), backend("p1", "primary")])
    expect(picks(s, 3, 0)[0]).toEqual(["p1", "p1", "p1"])
    const cooled = cool(s, "p1", 0)
    expect(picks(cooled, 2, 1000)[0]).toEqual(["f1", "f1"])
    expect(pick1(cooled, 5000)[0]).toBe("p1") // the cooldown ended exactly at 5000
  })

  it("a pool not in the query is never used", () => {
    const s = Fleet.make([backend("p1", "primary"), backend("x1", "other")])
    expect(pick1(cool(s, "p1", 0), 1000)[0]).toBeUndefined()
  })

  it.each<[string, Backend, Q]>([
    ["disabled", backend("p1", "primary", { enabled: false }), {}],
    ["not serving the model", backend("p1", "primary", { models: { other: {} } }), {}],
    ["excluded", backend("p1", "primary"), { exclude: new Set(["p1"]) }]
  ])("skips a %s backend", (_, b, q) => {
    const s = Fleet.make([b, backend("p2", "primary"), backend("f1", "fallback")])
    expect(picks(s, 2, 0, q)[0]).toEqual(["p2", "p2"])
  })

  it("serves a model named in the backend's models map, or any model when it has no map", () => {
    const s = Fleet.make([backend("p1", "primary", { models: { m: {} } }), backend("p2", "primary")])
    expect(picks(s, 2, 0, { model: "m" })[0]).toEqual(["p1", "p2"])
    expect(picks(s, 2, 0, { model: "z" })[0]).toEqual(["p2", "p2"])
  })

  it("skips a cooling backend until its cooldown ends", () => {
    const s = cool(Fleet.make([backend("p1", "primary"), backend("p2", "primary")]), "p1", 0)
    expect(picks(s, 2, 4999)[0]).toEqual(["p2", "p2"])
    expect(picks(s, 2, 5000)[0]).toEqual(["p1", "p2"])
  })

  it("skips a backend whose rpm window is full, and takes the slot in the pick", () => {
    const s = Fleet.make([backend("p1", "primary", { rpm: 2 }), backend("f1", "fallback")])
    const [ids, after] = picks(s, 4, 0)
    expect(ids).toEqual(["p1", "p1", "f1", "f1"])
    expect(pick1(after, 59_999)[0]).toBe("f1")
    expect(pick1(after, 60_000)[0]).toBe("p1")
  })

  it("none when nothing is eligible, and the state is unchanged", () => {
    const s = Fleet.make([backend("p1", "primary", { enabled: false })])
    const [t, next] = Fleet.pick(s, query(), policy, 0)
    expect(t).toEqual(Option.none())
    expect(next).toBe(s)
  })

  it("the ticket carries the send instant and the cooldown generation", () => {
    const s = cool(Fleet.make([backend("p1", "primary")]), "p1", 0)
    const [t] = Fleet.pick(s, query(), policy, 7000)
    const ticket = Option.getOrThrow(t)
    expect([ticket.backend.id, ticket.sentAt, ticket.generation]).toEqual(["p1", 7000, 1])
  })
})

describe("pick with `only`", () => {
  const s = Fleet.make([backend("p1", "primary"), backend("p2", "primary"), backend("p3", "primary")])

  it("picks just that backend and does not move the cursor", () => {
    const [id, after] = pick1(s, 0, { only: "p2" })
    expect(id).toBe("p2")
    expect(after.cursors).toEqual(s.cursors)
    expect(picks(after, 3, 0)[0]).toEqual(["p1", "p2", "p3"])
  })

  it("none when that backend is not eligible (no other backend instead)", () => {
    expect(pick1(cool(s, "p2", 0), 1000, { only: "p2" })[0]).toBeUndefined()
    expect(pick1(s, 0, { only: "p2", exclude: new Set(["p2"]) })[0]).toBeUndefined()
  })
})

describe("pick in emergency mode", () => {
  it("ignores cooldowns", () => {
    const s = cool(Fleet.make([backend("p1", "primary")]), "p1", 0, 60_000)
    expect(pick1(s, 1000)[0]).toBeUndefined()
    expect(pick1(s, 1000, { mode: "emergency" })[0]).toBe("p1")
  })

  it.each([
    // [rpm, rpm_fraction, default_rpm, expected limit]
    [40, 0.25, 40, 10],
    [undefined, 0.25, 40, 10],
    [undefined, 0.25, 8, 2],
    [3, 0.25, 40, 1], // floor(0.75) = 0 → at least 1
    [100, 0.1, 40, 10],
    [7, 0.5, 40, 3]
  ])("rpm %s × fraction %s (default_rpm %s) → %i emergency sends per 60 s", (rpm, fraction, defaultRpm, limit) => {
    const p = policyOf({ emergency: { rpm_fraction: fraction, default_rpm: defaultRpm } })
    const b = backend("p1", "primary", rpm === undefined ? {} : { rpm })
    expect(Fleet.emergencyLimit(b, p)).toBe(limit)
    const s = cool(Fleet.make([b]), "p1", 0, 300_000)
    const [ids, after] = picks(s, limit + 1, 1000, { mode: "emergency" }, p)
    expect(ids).toEqual([...Array.from({ length: limit }, () => "p1"), undefined])
    expect(pick1(after, 60_999, { mode: "emergency" }, p)[0]).toBeUndefined()
    expect(pick1(after, 61_000, { mode: "emergency" }, p)[0]).toBe("p1")
  })

  it("still respects rpm: direct sends fill the window for emergency sends too", () => {
    const s = Fleet.make([backend("p1", "primary", { rpm: 2 })])
    const [, full] = picks(s, 2, 0)
    expect(pick1(full, 0, { mode: "emergency" })[0]).toBeUndefined()
  })

  it("direct sends do not use up the emergency limit", () => {
    const s = Fleet.make([backend("p1", "primary", { rpm: 40 })])
    const [, used] = picks(s, 20, 0)
    const [ids] = picks(used, 11, 0, { mode: "emergency" })
    expect(ids.filter((x) => x === "p1")).toHaveLength(10)
  })

  it("still skips disabled backends", () => {
    const s = Fleet.make([backend("p1", "primary", { enabled: false })])
    expect(pick1(s, 0, { mode: "emergency" })[0]).toBeUndefined()
  })

  // floor(100 × 0.29) = 29, but 100 * 0.29 = 28.999999999999996 in IEEE-754.
  it("the emergency limit is floor(R × rpm_fraction) exactly (100 × 0.29 → 29)", () => {
    const p = policyOf({ emergency: { rpm_fraction: 0.29 } })
    expect(Fleet.emergencyLimit(backend("p1", "primary", { rpm: 100 }), p)).toBe(29)
  })
})

describe("report", () => {
  const s = Fleet.make([backend("p1", "primary")])
  const [t, picked] = Fleet.pick(s, query(), policy, 0)
  const ticket = Option.getOrThrow(t)

  it("a 429 starts a cooldown", () => {
    const [started, next] = Fleet.report(picked, ticket, FailureClass.RateLimited({ hintMs: Option.some(2000) }), policy, 100)
    expect(started).toEqual(Option.some({ reason: "rate_limited", durationMs: 2000, until: 2100, streak: 1 }))
    expect(Fleet.runtimeOf(next, "p1").cooldown.until).toBe(2100)
  })

  it.each<[string, FailureClass]>([
    ["NextPool", FailureClass.NextPool({ code: "context_length_exceeded" })],
    ["CallerFault", FailureClass.CallerFault({ status: 404 })],
    ["Success on a healthy backend", FailureClass.Success()]
  ])("%s changes nothing", (_, cls) => {
    const [started, next] = Fleet.report(picked, ticket, cls, policy, 100)
    expect(started).toEqual(Option.none())
    expect(next).toBe(picked)
  })

  it("a transient error and a timeout count as errors", () => {
    const [, a] = Fleet.report(picked, ticket, FailureClass.Transient({ kind: "server_error", status: Option.some(502) }), policy, 100)
    const [, b] = Fleet.report(a, ticket, FailureClass.Timeout({ stage: "headers" }), policy, 100)
    expect(Fleet.runtimeOf(b, "p1").cooldown.errors).toBe(2)
  })

  it("a key rejection ejects at once", () => {
    const [started] = Fleet.report(picked, ticket, FailureClass.KeyRejected({ status: 401 }), policy, 100)
    expect(started).toEqual(Option.some({ reason: "errors", durationMs: 10_000, until: 10_100, streak: 0 }))
  })

  it("a report for a backend removed meanwhile changes nothing", () => {
    const gone = Fleet.withBackends(picked, [])
    const [started, next] = Fleet.report(gone, ticket, FailureClass.RateLimited({ hintMs: Option.none() }), policy, 100)
    expect(started).toEqual(Option.none())
    expect(next).toBe(gone)
  })
})

describe("nextAvailableAt", () => {
  it("is now when a backend is free", () => {
    const s = Fleet.make([backend("p1", "primary")])
    expect(Fleet.nextAvailableAt(s, "m", POOLS, 1234)).toEqual(Option.some(1234))
  })

  it("is none when no enabled backend of those pools serves the model", () => {
    const s = Fleet.make([backend("p1", "primary", { enabled: false }), backend("p2", "primary", { models: { z: {} } })])
    expect(Fleet.nextAvailableAt(s, "m", POOLS, 0)).toEqual(Option.none())
  })

  it("is the min over cooldown ends and rate-window frees", () => {
    const base = Fleet.make([backend("p1", "primary"), backend("p2", "primary", { rpm: 1 })])
    const [, sent] = picks(base, 1, 0, { only: "p2" }) // p2's window frees at 60 000
    const short = cool(sent, "p1", 0, 5000)
    expect(Fleet.nextAvailableAt(short, "m", POOLS, 1000)).toEqual(Option.some(5000))
    const long = cool(sent, "p1", 0, 90_000)
    expect(Fleet.nextAvailableAt(long, "m", POOLS, 1000)).toEqual(Option.some(60_000))
  })

  it("a backend both cooling and rate-full is free at the later of the two", () => {
    const base = Fleet.make([backend("p1", "primary", { rpm: 1 })])
    const [, sent] = picks(base, 1, 0) // window frees at 60 000
    expect(Fleet.nextAvailableAt(cool(sent, "p1", 0, 5000), "m", POOLS, 1000)).toEqual(Option.some(60_000))
    expect(Fleet.nextAvailableAt(cool(sent, "p1", 0, 90_000), "m", POOLS, 1000)).toEqual(Option.some(90_000))
  })

  it("looks only at the given pools", () => {
    const s = cool(Fleet.make([backend("p1", "primary"), backend("f1", "fallback")]), "p1", 0, 5000)
    expect(Fleet.nextAvailableAt(s, "m", ["primary"], 1000)).toEqual(Option.some(5000))
    expect(Fleet.nextAvailableAt(s, "m", POOLS, 1000)).toEqual(Option.some(1000))
  })
})

describe("servingPools", () => {
  it("the given pools, in order, that hold an enabled backend serving the model", () => {
    const s = Fleet.make([
      backend("f1", "fallback"),
      backend("p1", "primary", { models: { big: {} } }),
      backend("x1", "extra", { enabled: false }),
      backend("c1", "cooling")
    ])
    const cooled = cool(s, "c1", 0)
    expect(Fleet.servingPools(cooled, "m", ["primary", "fallback", "extra", "cooling", "nowhere"])).toEqual(["fallback", "cooling"])
    expect(Fleet.servingPools(cooled, "big", ["primary", "fallback"])).toEqual(["primary", "fallback"])
    expect(Fleet.servingPools(cooled, "big", ["fallback", "primary"])).toEqual(["fallback", "primary"])
  })
})

describe("withBackends", () => {
  it("keeps runtime state for surviving ids and drops removed ones", () => {
    const s0 = Fleet.make([backend("p1", "primary", { rpm: 5 }), backend("p2", "primary")])
    const [, s1] = picks(s0, 1, 0, { only: "p1" })
    const s2 = cool(cool(s1, "p1", 0), "p2", 0, 60_000)
    // p1 changed (rpm 3), p2 removed, p3 added.
    const s3 = Fleet.withBackends(s2, [backend("p1", "primary", { rpm: 3 }), backend("p3", "primary")])
    expect(Fleet.runtimeOf(s3, "p1")).toBe(Fleet.runtimeOf(s2, "p1"))
    expect(Fleet.runtimeOf(s3, "p1").cooldown.until).toBe(5000)
    expect([...s3.runtime.keys()]).toEqual(["p1", "p3"])
    expect(Fleet.runtimeOf(s3, "p3")).toBe(Fleet.freshRuntime)
    expect(s3.byPool.get("primary")?.map((b) => b.id)).toEqual(["p1", "p3"])
    // p1's new rpm applies to its surviving window: 1 send so far, of 3.
    expect(Fleet.view(s3, 1000).find((v) => v.backend.id === "p1")?.rateWindowRemaining).toEqual(Option.some(2))
    // A backend re-added after removal starts fresh.
    const s4 = Fleet.withBackends(s3, [...s3.backends, backend("p2", "primary")])
    expect(Fleet.runtimeOf(s4, "p2")).toBe(Fleet.freshRuntime)
    expect(pick1(s4, 1000, { only: "p2" })[0]).toBe("p2")
  })
})

describe("view", () => {
  it("shows cooling-until, reason, streaks and rate-window remaining", () => {
    const s0 = Fleet.make([backend("p1", "primary", { rpm: 10 }), backend("p2", "primary")])
    const [, s1] = picks(s0, 2, 0, { only: "p1" })
    const s2 = cool(s1, "p1", 0, 8000)
    const at = (now: number) =>
      Fleet.view(s2, now).map((v) => ({
        id: v.backend.id,
        coolingUntil: v.coolingUntil,
        reason: v.cooldownReason,
        c429: v.consecutive429s,
        cErr: v.consecutiveErrors,
        remaining: v.rateWindowRemaining
      }))
    expect(at(1000)).toEqual([
      { id: "p1", coolingUntil: Option.some(8000), reason: "rate_limited", c429: 1, cErr: 0, remaining: Option.some(8) },
      { id: "p2", coolingUntil: Option.none(), reason: undefined, c429: 0, cErr: 0, remaining: Option.none() }
    ])
    expect(at(8000)[0]).toEqual({ id: "p1", coolingUntil: Option.none(), reason: undefined, c429: 1, cErr: 0, remaining: Option.some(8) })
    expect(at(60_000)[0]?.remaining).toEqual(Option.some(10))
  })
})
