// Every scenario file in this folder is a named test: played on virtual time, it must keep every
// invariant and meet its own expectations; the small ones are replayed on Effect's TestClock too.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, TestClock } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { check } from "../../src/adapters/simulated/ScenarioCheck.js"
import { parseScenario } from "../../src/adapters/simulated/ScenarioFile.js"
import * as ScenarioRunner from "../../src/adapters/simulated/ScenarioRunner.js"
import type { Scenario } from "../../src/adapters/simulated/ScenarioSchema.js"

const dir = import.meta.dirname
const files = readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()

const load = (file: string, overrides: ReadonlyArray<string> = []): Scenario =>
  Either.getOrThrowWith(parseScenario(readFileSync(join(dir, file), "utf8"), file, overrides), (e) => e)

describe("scenarios on virtual time", () => {
  it("ships the fifteen incident scenarios", () => {
    expect(files.length).toBeGreaterThanOrEqual(15)
  })
  for (const file of files) {
    const scenario = load(file)
    it(`${file}: ${scenario.name}`, () => {
      const run = ScenarioRunner.run(scenario)
      expect(check(run)).toEqual([])
      expect(run.results).toHaveLength(run.arrivals.length)
    })
  }
})

describe("scenarios replayed on Effect's TestClock", () => {
  for (const file of files) {
    const scenario = load(file)
    // TestClock detects quiescence with real timers (a few ms per wake-up): keep to the small ones.
    if (scenario.requests.some((r) => "generate" in r || r.count > 20)) continue
    it.effect(`${file} on TestClock gives the same run as the virtual driver`, () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(ScenarioRunner.play(scenario))
        yield* TestClock.adjust("24 hours")
        const run = yield* Fiber.join(fiber)
        expect(check(run)).toEqual([])
        // Same-instant wake-ups: TestClock wakes the latest sleeper first; replay in that order.
        const virtual = ScenarioRunner.run(scenario, { sameInstantOrder: "lifo" })
        expect(run.results).toEqual(virtual.results)
        expect(run.calls).toEqual(virtual.calls)
        expect(run.events).toEqual(virtual.events)
      }))
  }
})

describe("the scenario engine", () => {
  it("reports an expectation that is not met", () => {
    const scenario = load("03-wait-if-short.yaml", ["routing.wait_if_shorter_than_ms=1000"])
    const failures = check(ScenarioRunner.run(scenario))
    expect(failures).toContain("request #0 (t=0s): served by f1, expected p1")
    expect(failures).toContain("p1 called at [0s], expected [0s, 2s]")
  })

  it("--set changes the policy: fewer Primary-Wait retries lose the recovery", () => {
    const base = ScenarioRunner.run(load("09-primary-wait-recovers.yaml"))
    const one = ScenarioRunner.run(load("09-primary-wait-recovers.yaml", ["primary_wait.max_retries=1"]))
    expect(base.results[0]).toMatchObject({ status: 200, phase: "primary_wait" })
    // One 5 s wait finds p1 still cooling (until 7 s): Primary-Wait is exhausted and emergency serves.
    expect(one.results[0]).toMatchObject({ status: 200, phase: "emergency", latencyMs: 5000 })
  })

  it("is deterministic: the same seeded scenario plays the same way twice", () => {
    const scenario = load("13-rpm-never-exceeded.yaml")
    const a = ScenarioRunner.run(scenario)
    const b = ScenarioRunner.run(scenario)
    expect(a.calls).toEqual(b.calls)
    expect(a.results).toEqual(b.results)
  })

  it("counts a client that leaves during Primary-Wait as abandoned, keeping the funnel whole", () => {
    const scenario = load("09-primary-wait-recovers.yaml")
    const leaving = {
      ...scenario,
      expect: undefined,
      requests: [{ at: 0, count: 1, abandonAfter: 6000, model: undefined, expect: undefined, expectEach: undefined }]
    } satisfies Scenario
    const run = ScenarioRunner.run(leaving)
    expect(run.results[0]).toMatchObject({ status: 499, abandoned: true })
    expect(check(run)).toEqual([])
    expect(run.events.filter((e) => e.event._tag === "PrimaryWaitAbandoned")).toHaveLength(1)
  })

  it("a primary outage: the fallback serves throughout, the primary is back within 15 s of recovering", () => {
    const outage = "15-primary-outage-recovers.yaml"
    // The same file with p1 recovering at `recoveredAt`, and without its exact per-request expectations.
    const recoveringAt = (recoveredAt: number): Scenario => {
      const scenario = load(outage, [`backends.0.script.0.until=${recoveredAt}`])
      return {
        ...scenario,
        expect: undefined,
        requests: scenario.requests.map((r) => ("generate" in r ? r : { ...r, expect: undefined, expectEach: undefined }))
      }
    }
    // p1 recovers at 60 s as in the file, then at every second of a whole 12 s probe cycle around it.
    for (const recoveredAt of [60_000, ...Array.from({ length: 12 }, (_, i) => 52_000 + i * 1000)]) {
      const run = ScenarioRunner.run(recoveringAt(recoveredAt))
      const at = `recovering at ${recoveredAt / 1000}s`
      expect(check(run), at).toEqual([])
      expect(run.results.filter((r) => r.status !== 200), at).toEqual([])
      expect(run.results.filter((r) => r.at < recoveredAt && r.backend !== "f1"), at).toEqual([])
      const back = run.results.find((r) => r.backend === "p1")
      expect(back, at).toBeDefined()
      expect(back!.at - recoveredAt, at).toBeLessThanOrEqual(15_000)
      expect(run.results.filter((r) => r.at >= back!.at && r.backend !== "p1"), at).toEqual([])
      expect(run.calls.filter((c) => c.backend === "f1" && c.at >= back!.at), at).toEqual([])
    }
  })

  it.each([
    [
      "name: x\nbackends: [{ id: p1, pool: primary, script: [{ status: 42 }] }]\nrequests: []",
      "backends[0].script[0].status"
    ],
    ["name: x\nbackends: [{ id: p1, pool: primary, rpm: -3 }]\nrequests: []", "backends[0].rpm"],
    ["name: x\nbackends: [{ id: p1, pool: primary }]\nrequests: [{ at: soon }]", "requests[0]"],
    ["name: x\nbackends: []\nrequests: []", "backends"],
    ["name: x\nbackends: [{ id: p1, pool: primary }]\nrequests: []\nexpect: { funnle: {} }", "expect.funnle"],
    ["name: x\nbackends: [{ id: p1, pool: primary, script: [{ latency: 2 weeks }] }]\nrequests: []", "latency"]
  ])("a malformed scenario names the field (%#)", (text, field) => {
    const result = parseScenario(text, "inline.yaml")
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.message).toContain(field)
  })

  it("a --set that is not path=value is refused", () => {
    const result = parseScenario("name: x\nbackends: [{ id: p1, pool: primary }]\nrequests: []", "x", ["oops"])
    expect(Either.isLeft(result) && result.left.problems).toEqual(["--set oops: expected path=value"])
  })
})
