/**
 * Summaries of a played scenario, and their text form for the simulator's output: per-request
 * lines, then what an operator asks — served per phase, Primary-Wait recovery, added wait, 503s.
 */
import { funnelOf } from "./ScenarioCheck.js"
import type { RequestResult, ScenarioRun } from "./ScenarioRunner.js"

export interface Summary {
  readonly requests: number
  readonly servedDirect: number
  readonly servedPrimaryWait: number
  readonly servedEmergency: number
  /** Upstream 4xx answers passed through to the client. */
  readonly passedThrough: number
  readonly exhausted503: number
  /** Primary-Wait recoveries over entries; undefined when nothing entered. */
  readonly recoveryRate: number | undefined
  readonly waitP50Ms: number
  readonly waitP95Ms: number
  readonly waitMaxMs: number
  readonly upstreamCalls: number
  readonly virtualDurationMs: number
}

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!

const served = (r: RequestResult) => r.status >= 200 && r.status < 300

export const summarize = (run: ScenarioRun): Summary => {
  const rs = run.results
  const f = funnelOf(run)
  const waits = rs.map((r) => r.latencyMs).sort((a, b) => a - b)
  return {
    requests: rs.length,
    servedDirect: rs.filter((r) => served(r) && r.phase === "direct").length,
    servedPrimaryWait: rs.filter((r) => served(r) && r.phase === "primary_wait").length,
    servedEmergency: rs.filter((r) => served(r) && r.phase === "emergency").length,
    passedThrough: rs.filter((r) => r.status >= 400 && r.status !== 503 && r.backend !== undefined).length,
    exhausted503: rs.filter((r) => r.status === 503 && r.backend === undefined).length,
    recoveryRate: f.enter === 0 ? undefined : f.recovery / f.enter,
    waitP50Ms: quantile(waits, 0.5),
    waitP95Ms: quantile(waits, 0.95),
    waitMaxMs: waits[waits.length - 1] ?? 0,
    upstreamCalls: run.calls.length,
    virtualDurationMs: run.endedAt
  }
}

const sec = (ms: number) => `${(ms / 1000).toFixed(3)}s`
const pct = (x: number | undefined) => (x === undefined ? "—" : `${(x * 100).toFixed(1)}%`)

export const requestLine = (r: RequestResult) =>
  `t=${sec(r.at).padStart(9)}  #${String(r.index).padEnd(4)} ${String(r.status).padEnd(4)} ${r.phase.padEnd(13)}` +
  `${(r.backend ?? "-").padEnd(12)} attempts=${r.attempts}  waited=${sec(r.latencyMs)}`

/** Rows of the summary table, label → value. */
export const summaryRows = (run: ScenarioRun, s: Summary = summarize(run)): Array<readonly [string, string]> => {
  const f = funnelOf(run)
  return [
    ["requests", String(s.requests)],
    ["served direct", String(s.servedDirect)],
    ["served in Primary-Wait", String(s.servedPrimaryWait)],
    ["served in emergency", String(s.servedEmergency)],
    ["4xx passed through", String(s.passedThrough)],
    ["503 AllPoolsExhausted", String(s.exhausted503)],
    ["Primary-Wait entered", String(f.enter)],
    ["Primary-Wait recovery rate", pct(s.recoveryRate)],
    ["added wait p50", sec(s.waitP50Ms)],
    ["added wait p95", sec(s.waitP95Ms)],
    ["added wait max", sec(s.waitMaxMs)],
    ["upstream calls", String(s.upstreamCalls)]
  ]
}

export const formatTable = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}
