/**
 * The demo's walk through Sidecar's lifecycle, as data: for each phase, what the simulated
 * providers start doing, the requests sent, and what Sidecar must answer for the step to pass.
 */
import { emergencyPerKey, timing } from "./DemoConfig.js"
import type { Row } from "./DemoClient.js"
import { healthy, rateLimited, type SimulatedUpstream } from "./SimulatedUpstream.js"

export interface Providers {
  readonly a: SimulatedUpstream
  readonly b: SimulatedUpstream
  readonly fallback: SimulatedUpstream
}

export interface Expect {
  readonly status: number
  readonly phase: string
  /** "-" for no backend (a 503). */
  readonly backend: string
  readonly attempts: number
  /** The request must have waited at least this long (ms, client-side). */
  readonly minMs?: number
  /** For an error answer: its OpenAI error `type`; a `Retry-After` of at least 1 s is required too. */
  readonly errorType?: string
}

export interface Request {
  readonly label: string
  readonly expect: Expect
}

export interface Step {
  readonly id: string
  readonly heading: string
  /** What the providers do from now on (Sidecar learns it only by calling them). */
  readonly setup: (p: Providers) => void
  readonly requests: ReadonlyArray<Request>
}

const { longRetryAfterS: long, shortRetryAfterS: short, mediumRetryAfterS: medium } = timing
const waitIfShorterS = timing.waitIfShorterThanMs / 1000
const pw = `${timing.primaryWaitRetries} × ${timing.primaryWaitIntervalMs / 1000} s`

const ok = (phase: string, backend: string, attempts: number, minMs?: number): Expect =>
  minMs === undefined ? { status: 200, phase, backend, attempts } : { status: 200, phase, backend, attempts, minMs }

export const script: ReadonlyArray<Step> = [
  {
    id: "a",
    heading: "Direct: every key healthy, round-robin over the primary pool",
    setup: () => {},
    requests: ["primary-a", "primary-b", "primary-a", "primary-b"].map((backend) => ({
      label: "healthy fleet",
      expect: ok("direct", backend, 1)
    }))
  },
  {
    id: "b",
    heading: `Cooldown: primary-a answers 429 (Retry-After: ${long} s) → benched, primary-b serves`,
    setup: (p) => p.a.set(rateLimited(long)),
    requests: [
      { label: "primary-a 429 → moves on to primary-b", expect: ok("direct", "primary-b", 2) },
      { label: "primary-a cooling: not even tried", expect: ok("direct", "primary-b", 1) }
    ]
  },
  {
    id: "c",
    heading: `Wait if short: primary-b answers one 429 (Retry-After: ${short} s < ${waitIfShorterS} s) → wait, same key`,
    setup: (p) => p.b.once(rateLimited(short)),
    requests: [
      { label: `429, wait ${short} s, primary-b again`, expect: ok("direct", "primary-b", 2, short * 1000 - 500) }
    ]
  },
  {
    id: "d",
    heading: `Fail over: primary-b 429 (Retry-After: ${medium} s > ${waitIfShorterS} s), primary-a cooling → fallback`,
    setup: (p) => p.b.set(rateLimited(medium)),
    requests: [
      { label: "both primaries cooling → fallback-1", expect: ok("direct", "fallback-1", 2) },
      { label: "fallback-1 serves while they cool", expect: ok("direct", "fallback-1", 1) }
    ]
  },
  {
    id: "e",
    heading: `Primary-Wait recovery: fallback-1 429 too (${long} s); primary-b's ${medium} s cooldown ends soon`,
    setup: (p) => {
      p.fallback.set(rateLimited(long))
      p.b.set(healthy) // its provider recovered; Sidecar finds out when the cooldown ends
    },
    requests: [
      { label: "every key cooling: wait for primary", expect: ok("primary_wait", "primary-b", 2, 1500) }
    ]
  },
  {
    id: "f",
    heading: `Emergency: primaries 429 (${long} s), fallback-1 recovered but benched → Primary-Wait (${pw}) runs out`,
    setup: (p) => {
      p.a.set(rateLimited(long))
      p.b.set(rateLimited(long))
      p.fallback.set(healthy)
    },
    requests: [
      {
        label: "Primary-Wait exhausted → emergency",
        expect: ok("emergency", "fallback-1", 4, timing.primaryWaitRetries * timing.primaryWaitIntervalMs - 500)
      }
    ]
  },
  {
    id: "g",
    heading: `Exhausted: emergency budget spent (${emergencyPerKey} request/min per key) → 503 AllPoolsExhausted`,
    setup: () => {},
    requests: [
      {
        label: "nothing left to try",
        expect: { status: 503, phase: "exhausted", backend: "-", attempts: 0, errorType: "AllPoolsExhausted" }
      }
    ]
  }
]

/** What is wrong with an answer, or nothing when it is what the step describes. */
export const mismatches = (e: Expect, r: Row): Array<string> => {
  const problems: Array<string> = []
  const compare = (what: string, got: unknown, want: unknown) => {
    if (got !== want) problems.push(`${what} ${String(got)}, expected ${String(want)}`)
  }
  compare("status", r.status, e.status)
  compare("phase", r.phase, e.phase)
  compare("backend", r.backend, e.backend)
  compare("attempts", r.attempts, e.attempts)
  if (e.minMs !== undefined && r.latencyMs < e.minMs) {
    problems.push(`answered after ${r.latencyMs} ms, expected a wait of at least ${e.minMs} ms`)
  }
  if (e.errorType !== undefined) {
    compare("error type", r.errorType, e.errorType)
    if (!(Number(r.retryAfter) >= 1)) problems.push(`Retry-After ${r.retryAfter ?? "missing"}, expected >= 1 s`)
  }
  return problems
}
