// Scenario 14 as a property: random fleets, random scripts of every failure kind, random policies
// and random arrivals (some clients leaving early). Whatever happens, the invariants hold.
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { invariantFailures } from "../../src/adapters/simulated/ScenarioCheck.js"
import * as ScenarioRunner from "../../src/adapters/simulated/ScenarioRunner.js"
import { decodeScenario } from "../../src/adapters/simulated/ScenarioSchema.js"

const rule = fc.record({
  chance: fc.option(fc.double({ min: 0.05, max: 1, noNaN: true }), { nil: undefined }),
  times: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
  from: fc.option(fc.integer({ min: 0, max: 60_000 }), { nil: undefined }),
  latency: fc.integer({ min: 0, max: 3000 }),
  kind: fc.constantFrom(
    { status: 429 },
    { status: 429, retry_after: 1 },
    { status: 429, retry_after: 30 },
    { status: 429, retry_after: "garbage" },
    { status: 429, retry_after_ms: 700 },
    { status: 429, reset_requests: "1m30s" },
    { status: 500 },
    { status: 503 },
    { status: 400, error_code: "context_length_exceeded" },
    { status: 400, error_code: "invalid_value" },
    { status: 401 },
    { timeout: "headers" as const },
    { timeout: "first_token" as const },
    { connection: "reset" as const },
    { status: 200 }
  )
}).map(({ kind, ...r }) => ({ ...r, ...kind }))

const backend = (i: number) =>
  fc.record({
    pool: fc.constantFrom("primary", "primary", "fallback"),
    rpm: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
    timeout_ms: fc.integer({ min: 100, max: 5000 }),
    first_token_timeout_ms: fc.integer({ min: 100, max: 5000 }),
    enabled: fc.boolean().map((b) => b || i === 0),
    models: fc.option(fc.constant({ m1: { upstream: "up-m1" } }), { nil: undefined }),
    script: fc.array(rule, { maxLength: 5 })
  }).map((b) => ({ id: `b${i}`, ...b }))

const policy = fc.record({
  routing: fc.record({
    max_attempts: fc.integer({ min: 1, max: 6 }),
    wait_if_shorter_than_ms: fc.integer({ min: 0, max: 5000 }),
    same_backend_retries: fc.integer({ min: 0, max: 2 })
  }),
  cooldown: fc.record({
    base_ms: fc.integer({ min: 0, max: 10_000 }),
    multiplier: fc.double({ min: 1, max: 3, noNaN: true }),
    max_ms: fc.integer({ min: 0, max: 120_000 }),
    honor_retry_after: fc.boolean(),
    error_threshold: fc.integer({ min: 1, max: 4 }),
    error_ms: fc.integer({ min: 0, max: 20_000 })
  }),
  primary_wait: fc.record({ interval_ms: fc.integer({ min: 0, max: 6000 }), max_retries: fc.integer({ min: 0, max: 4 }) }),
  emergency: fc.record({
    rpm_fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    default_rpm: fc.integer({ min: 1, max: 60 }),
    max_attempts: fc.integer({ min: 0, max: 3 })
  })
})

const group = fc.record({
  at: fc.integer({ min: 0, max: 90_000 }),
  count: fc.integer({ min: 1, max: 8 }),
  every: fc.option(fc.integer({ min: 0, max: 2000 }), { nil: undefined }),
  model: fc.constantFrom("m1", "m2"),
  abandon_after: fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined })
})

const scenario = fc.record({
  seed: fc.integer(),
  policy,
  backends: fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => backend(i)))),
  requests: fc.array(group, { minLength: 1, maxLength: 10 })
}).map((s) => ({ name: "random storm", ...s }))

describe("scenario 14: random storms", () => {
  it("no request is lost, the funnel balances, no cooling key gets a direct send, no rpm is exceeded", () => {
    fc.assert(
      fc.property(scenario, (input) => {
        const decoded = decodeScenario(input)
        if (Either.isLeft(decoded)) throw new Error(decoded.left.join("\n"))
        const run = ScenarioRunner.run(decoded.right)
        expect(invariantFailures(run)).toEqual([])
        // Every request ended in exactly one outcome with a sensible status.
        expect(run.results.map((r) => r.index).sort((a, b) => a - b)).toEqual(run.arrivals.map((a) => a.index))
        for (const r of run.results) expect([200, 400, 401, 404, 499, 503]).toContain(r.status)
      }),
      { numRuns: 150, seed: 20261127 }
    )
  })
})
