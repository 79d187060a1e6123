/**
 * Text layout of the demo: the table of requests (one aligned line each), the upstream traffic,
 * the funnel with its invariants, and the client-side phase counts. Plain text, no colors.
 */
import type { Row } from "./DemoClient.js"
import { entriesBalance, exhaustedBalance, type Funnel } from "./Funnel.js"
import type { SimulatedUpstream } from "./SimulatedUpstream.js"

const LABEL = 40

const columns = (cells: ReadonlyArray<string>) => {
  const [index = "", label = "", status = "", phase = "", backend = "", attempts = "", latency = "", note = ""] = cells
  return [
    index.padStart(3),
    label.padEnd(LABEL),
    status.padStart(6),
    phase.padEnd(12),
    backend.padEnd(10),
    attempts.padStart(8),
    latency.padStart(9),
    note
  ].join("  ").trimEnd()
}

export const tableHeader = (): string =>
  columns(["#", "request", "status", "phase", "backend", "attempts", "latency"])

export const rowLine = (r: Row): string => {
  const note = r.errorType === undefined ? "" : `${r.errorType}, Retry-After: ${r.retryAfter ?? "-"} s`
  const label = r.label.length > LABEL ? `${r.label.slice(0, LABEL - 1)}…` : r.label
  return columns([
    String(r.index),
    label,
    String(r.status),
    r.phase,
    r.backend,
    Number.isNaN(r.attempts) ? "-" : String(r.attempts),
    `${r.latencyMs} ms`,
    note
  ])
}

export const heading = (step: string, text: string): string => `(${step}) ${text}`

/** What each simulated provider answered, in order: the story beneath Sidecar's headers. */
export const trafficLines = (upstreams: ReadonlyArray<SimulatedUpstream>): Array<string> => [
  "Upstream traffic (each provider's answers, in order):",
  ...upstreams.map((u) => `  ${u.name.padEnd(10)}  ${u.answered().join(" ")}`)
]

const mark = (ok: boolean) => (ok ? "ok" : "VIOLATED")

export const funnelLines = (f: Funnel): Array<string> => [
  "Primary-Wait funnel (Effect metrics registry, in-process, this run):",
  `  sidecar_primary_wait_enter       ${f.enter}`,
  `  sidecar_primary_wait_recovery    ${f.recovery}`,
  `  sidecar_primary_wait_exhausted   ${f.exhausted}`,
  `  sidecar_primary_wait_abandoned   ${f.abandoned}`,
  `  sidecar_emergency_activations    ${f.emergencyActivations}`,
  `  sidecar_emergency_success        ${f.emergencySuccess}`,
  `  sidecar_all_pools_exhausted      ${f.allPoolsExhausted}`,
  `  enter = recovery + exhausted + abandoned:  ${f.enter} = ${f.recovery} + ${f.exhausted} + ${f.abandoned}  ${mark(entriesBalance(f))}`,
  `  exhausted = emergency activations:         ${f.exhausted} = ${f.emergencyActivations}  ${mark(exhaustedBalance(f))}`
]

export const PHASES = ["direct", "primary_wait", "emergency", "exhausted"] as const

/** How many answers the client saw in each phase (from `x-sidecar-phase`). */
export const phaseCounts = (rows: ReadonlyArray<Row>): Record<string, number> => {
  const counts: Record<string, number> = Object.fromEntries(PHASES.map((p) => [p, 0]))
  for (const r of rows) counts[r.phase] = (counts[r.phase] ?? 0) + 1
  return counts
}

export const phaseLine = (rows: ReadonlyArray<Row>): string =>
  `Phases seen by the client: ${Object.entries(phaseCounts(rows)).map(([p, n]) => `${p} ${n}`).join(", ")}`
