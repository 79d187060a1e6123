/**
 * Checks a played scenario: the invariants that must hold in every run (rate limits, cooldowns,
 * the Primary-Wait funnel, one outcome per request), then the scenario's own expectations.
 * Returns human-readable failures; none means the run is as described.
 */
import { type Funnel, imbalances } from "../../domain/Funnel.js"
import { WINDOW_MS } from "../../domain/SlidingWindow.js"
import type { RequestResult, ScenarioRun } from "./ScenarioRunner.js"
import type { RequestExpect } from "./ScenarioSchema.js"

const s = (ms: number) => `${(ms / 1000).toFixed(3).replace(/\.?0+$/, "")}s`


export const funnelOf = (run: ScenarioRun): Funnel => {
  const n = (tag: string) => run.events.filter((e) => e.event._tag === tag).length
  return {
    enter: n("PrimaryWaitEntered"),
    recovery: n("PrimaryWaitRecovered"),
    exhausted: n("PrimaryWaitExhausted"),
    abandoned: n("PrimaryWaitAbandoned"),
    emergencyActivations: n("EmergencyActivated"),
    emergencySuccess: n("EmergencySucceeded"),
    allPoolsExhausted: n("AllPoolsExhausted")
  }
}

/** Invariants every run must satisfy, whatever the scenario. */
export const invariantFailures = (run: ScenarioRun): Array<string> => {
  const out: Array<string> = []
  // Every request ends in exactly one outcome, and its attempt count is what the upstreams saw.
  if (run.results.length !== run.arrivals.length) {
    out.push(`${run.arrivals.length} requests arrived but ${run.results.length} ended`)
  }
  const callsByRequest = new Map<string, number>()
  for (const c of run.calls) callsByRequest.set(c.requestId, (callsByRequest.get(c.requestId) ?? 0) + 1)
  for (const r of run.results) {
    const seen = callsByRequest.get(`r${r.index}`) ?? 0
    if (!r.abandoned && seen !== r.attempts) out.push(`request #${r.index}: reports ${r.attempts} attempts, upstreams saw ${seen}`)
  }
  // rpm: never more than rpm sends in any 60 s window (window = (t - 60 s, t]).
  for (const b of run.scenario.backends) {
    if (b.rpm === undefined) continue
    const times = run.calls.filter((c) => c.backend === b.id).map((c) => c.at)
    let lo = 0
    for (let hi = 0; hi < times.length; hi++) {
      while (times[lo]! <= times[hi]! - WINDOW_MS) lo++
      if (hi - lo + 1 > b.rpm) {
        out.push(`${b.id}: ${hi - lo + 1} calls in the 60 s window ending at ${s(times[hi]!)} (rpm ${b.rpm})`)
        break
      }
    }
  }
  // No direct-phase send to a backend in cooldown.
  for (const c of run.calls) {
    if (c.sentWhileCooling) out.push(`${c.backend}: ${c.phase} send at ${s(c.at)} while cooling (request r${c.requestId})`)
  }
  // The Primary-Wait funnel.
  out.push(...imbalances(funnelOf(run)))
  return out
}

const requestFailures = (r: RequestResult, e: RequestExpect): Array<string> => {
  const out: Array<string> = []
  const at = `request #${r.index} (t=${s(r.at)})`
  if (e.status !== undefined && e.status !== r.status) out.push(`${at}: status ${r.status}, expected ${e.status}`)
  if (e.backend !== undefined && (e.backend ?? undefined) !== r.backend) {
    out.push(`${at}: served by ${r.backend ?? "none"}, expected ${e.backend ?? "none"}`)
  }
  if (e.pool !== undefined && e.pool !== r.pool) out.push(`${at}: pool ${r.pool ?? "none"}, expected ${e.pool}`)
  if (e.phase !== undefined && e.phase !== r.phase) out.push(`${at}: phase ${r.phase}, expected ${e.phase}`)
  if (e.attempts !== undefined && e.attempts !== r.attempts) {
    out.push(`${at}: ${r.attempts} attempts, expected ${e.attempts}`)
  }
  if (e.latency !== undefined && e.latency !== r.latencyMs) {
    out.push(`${at}: latency ${s(r.latencyMs)}, expected ${s(e.latency)}`)
  }
  if (e.retryAfter !== undefined && e.retryAfter !== r.retryAfterMs) {
    out.push(`${at}: retry after ${r.retryAfterMs === undefined ? "none" : s(r.retryAfterMs)}, expected ${s(e.retryAfter)}`)
  }
  return out
}

const countBy = <K extends string>(xs: ReadonlyArray<K | undefined>) => {
  const m: Record<string, number> = {}
  for (const x of xs) if (x !== undefined) m[x] = (m[x] ?? 0) + 1
  return m
}

const compareCounts = (what: string, actual: Record<string, number>, expected: Record<string, number | undefined>) =>
  Object.entries(expected).flatMap(([k, v]) =>
    v === undefined || (actual[k] ?? 0) === v ? [] : [`${what} ${k}: ${actual[k] ?? 0}, expected ${v}`]
  )

/** The scenario's own expectations. */
export const expectationFailures = (run: ScenarioRun): Array<string> => {
  const out: Array<string> = []
  for (const r of run.results) {
    const e = run.arrivals[r.index]?.expect
    if (e !== undefined) out.push(...requestFailures(r, e))
  }
  const x = run.scenario.expect
  if (x === undefined) return out
  if (x.servedBy) {
    out.push(...compareCounts("served by", countBy(run.results.filter((r) => r.status < 300).map((r) => r.backend)), x.servedBy))
  }
  if (x.phases) out.push(...compareCounts("phase", countBy(run.results.map((r) => r.phase)), x.phases))
  if (x.statuses) out.push(...compareCounts("status", countBy(run.results.map((r) => String(r.status))), x.statuses))
  if (x.calls) out.push(...compareCounts("calls to", countBy(run.calls.map((c) => c.backend)), x.calls))
  for (const [backend, times] of Object.entries(x.callTimes ?? {})) {
    const actual = run.calls.filter((c) => c.backend === backend).map((c) => c.at)
    if (actual.join() !== times.join()) {
      out.push(`${backend} called at [${actual.map(s).join(", ")}], expected [${times.map(s).join(", ")}]`)
    }
  }
  for (const [backend, expected] of Object.entries(x.cooldowns ?? {})) {
    const actual = run.events.flatMap((e) =>
      e.event._tag === "BackendCooldown" && e.event.backend === backend
        ? [{ at: e.at, duration: e.event.durationMs, reason: e.event.reason }]
        : []
    )
    const fmt = (c: { at: number; duration: number; reason?: string | undefined }) =>
      `${s(c.at)}+${s(c.duration)}${c.reason === undefined ? "" : ` (${c.reason})`}`
    const same = actual.length === expected.length && expected.every((c, i) =>
      c.at === actual[i]!.at && c.duration === actual[i]!.duration && (c.reason === undefined || c.reason === actual[i]!.reason)
    )
    if (!same) out.push(`${backend} cooldowns [${actual.map(fmt).join(", ")}], expected [${expected.map(fmt).join(", ")}]`)
  }
  if (x.funnel) out.push(...compareCounts("funnel", { ...funnelOf(run) }, x.funnel))
  return out
}

/** Every failure of a run: invariants first, then expectations. */
export const check = (run: ScenarioRun): Array<string> => [...invariantFailures(run), ...expectationFailures(run)]
