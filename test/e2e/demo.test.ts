// `npm run demo` as a test: the scripted walk on real time and real sockets (127.0.0.1) must show
// every lifecycle phase in order, each request answered as its step describes, and a balanced funnel.
import { describe, expect, it } from "@effect/vitest"
import { runDemo } from "../../src/app/demo/RunDemo.js"

describe("npm run demo", () => {
  it("walks direct → cooldown → wait if short → fallback → Primary-Wait → emergency → 503", async () => {
    const lines: Array<string> = []
    const result = await runDemo((line) => lines.push(line))

    expect(result.failure, lines.join("\n")).toBeUndefined()
    expect(result.ok).toBe(true)

    // Every step's heading, in order; one line per request.
    const headings = lines.filter((l) => /^\([a-g]\) /.test(l)).map((l) => l.slice(1, 2))
    expect(headings).toEqual(["a", "b", "c", "d", "e", "f", "g"])
    expect(lines.filter((l) => /^\s+\d+\s{2}/.test(l))).toHaveLength(result.rows.length)

    // The phases as the client saw them (x-sidecar-phase), in order of first appearance.
    const phases = result.rows.map((r) => r.phase)
    expect([...new Set(phases)]).toEqual(["direct", "primary_wait", "emergency", "exhausted"])
    expect(result.rows.map((r) => r.step)).toEqual(["a", "a", "a", "a", "b", "b", "c", "d", "d", "e", "f", "g"])
    expect(result.rows.slice(0, 4).map((r) => r.backend)).toEqual(["primary-a", "primary-b", "primary-a", "primary-b"])

    // (c) waited for the same key; (g) is the 503 callers' fallback chains key on.
    const waited = result.rows.find((r) => r.step === "c")!
    expect(waited.backend).toBe("primary-b")
    expect(waited.latencyMs).toBeGreaterThanOrEqual(1500)
    const last = result.rows.at(-1)!
    expect(last.status).toBe(503)
    expect(last.errorType).toBe("AllPoolsExhausted")
    expect(Number(last.retryAfter)).toBeGreaterThanOrEqual(1)

    // The funnel from the metrics registry: enter = recovery + exhausted (+ abandoned), exhausted = emergency.
    expect(result.funnel).toEqual({
      enter: 3,
      recovery: 1,
      exhausted: 2,
      abandoned: 0,
      emergencyActivations: 2,
      emergencySuccess: 1,
      allPoolsExhausted: 1
    })
  }, 90_000)
})
