/**
 * Turns the per-round samples into per-target medians and same-round ratios against raw, prints
 * the table and the target checks, and shapes the JSON written at the end of a run.
 */
import { type HoldResult, median, type RateResult, type SseResult } from "./protocol.js"

export interface SatSample { readonly rps: number; readonly requests: number; readonly errors: number; readonly cpuUsPerReq: number }

export interface RoundSample {
  readonly round: number
  sat?: SatSample
  /** Saturation while every Sidecar variant is saturated at the same time (the "pair" phase). */
  pair?: SatSample
  rate?: RateResult
  sse?: SseResult & { readonly cpuUsPerStream: number }
  gap?: SseResult
}

export interface HoldSample {
  readonly rssIdleMb: number
  readonly rssPeakMb: number
  readonly holding: number
  readonly result: HoldResult
}

export interface Summary {
  readonly target: string
  readonly rps: number
  readonly rpsVsRaw: number
  readonly cpuUsPerReq: number
  readonly cpuVsRaw: number
  readonly cpuUsPerStream: number
  readonly cpuStreamVsRaw: number
  readonly rateMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }
  readonly sseTtfbMs: { readonly p50: number; readonly p99: number }
  readonly sseTotalMs: { readonly p50: number; readonly p99: number }
  readonly gapTtfbMs: number
  readonly addedTtfbMs: number
  readonly eventDelayMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }
  readonly eventsMissing: number
  /** Against the base Sidecar (warn, ledger on), both saturated at once: CPU/request and req/s. */
  readonly pairCpuVsBase: number
  readonly pairRpsVsBase: number
  readonly rssIdleMb: number
  readonly rssAt1000Mb: number
  readonly holding: number
  readonly errors: number
}

const byRound = (rounds: ReadonlyArray<RoundSample>, r: number) => rounds.find((s) => s.round === r)

/** Median over rounds of f(target)/f(other) (or minus, for `diff`), each pair from the same round. */
const vsRaw = (
  mine: ReadonlyArray<RoundSample>,
  other: ReadonlyArray<RoundSample> | undefined,
  f: (s: RoundSample) => number | undefined,
  diff = false
): number => {
  if (other === undefined) return NaN
  return median(mine.map((s) => {
    const a = f(s)
    const rs = byRound(other, s.round)
    const b = rs === undefined ? undefined : f(rs)
    if (a === undefined || b === undefined) return NaN
    return diff ? a - b : a / b
  }))
}

const med = (rounds: ReadonlyArray<RoundSample>, f: (s: RoundSample) => number | undefined) =>
  median(rounds.map((s) => f(s) ?? NaN))
const maxOf = (rounds: ReadonlyArray<RoundSample>, f: (s: RoundSample) => number | undefined) =>
  Math.max(...rounds.map((s) => f(s) ?? -Infinity))

export const summarize = (
  target: string,
  rounds: ReadonlyArray<RoundSample>,
  raw: ReadonlyArray<RoundSample> | undefined,
  hold: HoldSample | undefined,
  expectedEvents: number,
  base?: ReadonlyArray<RoundSample>
): Summary => {
  const ms = (us: number | undefined) => (us === undefined ? undefined : us / 1000)
  const gapStreams = rounds.reduce((a, s) => a + (s.gap?.streams ?? 0), 0)
  const gapEvents = rounds.reduce((a, s) => a + (s.gap?.eventsSeen ?? 0), 0)
  const errors = rounds.reduce((a, s) =>
    a + (s.sat?.errors ?? 0) + (s.rate?.errors ?? 0) + (s.sse?.errors ?? 0) + (s.sse?.incomplete ?? 0) +
    (s.gap?.errors ?? 0) + (s.gap?.incomplete ?? 0) + (s.pair?.errors ?? 0), 0) + (hold === undefined ? 0 : hold.result.errors)
  return {
    target,
    rps: med(rounds, (s) => s.sat?.rps),
    rpsVsRaw: vsRaw(rounds, raw, (s) => s.sat?.rps),
    cpuUsPerReq: med(rounds, (s) => s.sat?.cpuUsPerReq),
    cpuVsRaw: vsRaw(rounds, raw, (s) => s.sat?.cpuUsPerReq),
    cpuUsPerStream: med(rounds, (s) => s.sse?.cpuUsPerStream),
    cpuStreamVsRaw: vsRaw(rounds, raw, (s) => s.sse?.cpuUsPerStream),
    rateMs: {
      p50: med(rounds, (s) => ms(s.rate?.latencyUs.p50)),
      p90: med(rounds, (s) => ms(s.rate?.latencyUs.p90)),
      p99: med(rounds, (s) => ms(s.rate?.latencyUs.p99)),
      max: maxOf(rounds, (s) => ms(s.rate?.latencyUs.max))
    },
    sseTtfbMs: { p50: med(rounds, (s) => ms(s.sse?.ttfbUs.p50)), p99: med(rounds, (s) => ms(s.sse?.ttfbUs.p99)) },
    sseTotalMs: { p50: med(rounds, (s) => ms(s.sse?.totalUs.p50)), p99: med(rounds, (s) => ms(s.sse?.totalUs.p99)) },
    gapTtfbMs: med(rounds, (s) => ms(s.gap?.ttfbUs.p50)),
    addedTtfbMs: vsRaw(rounds, raw, (s) => ms(s.gap?.ttfbUs.p50), true),
    eventDelayMs: {
      p50: med(rounds, (s) => ms(s.gap?.eventDelayUs?.p50)),
      p90: med(rounds, (s) => ms(s.gap?.eventDelayUs?.p90)),
      p99: med(rounds, (s) => ms(s.gap?.eventDelayUs?.p99)),
      max: maxOf(rounds, (s) => ms(s.gap?.eventDelayUs?.max))
    },
    eventsMissing: gapStreams * expectedEvents - gapEvents,
    pairCpuVsBase: vsRaw(rounds, base, (s) => s.pair?.cpuUsPerReq),
    pairRpsVsBase: vsRaw(rounds, base, (s) => s.pair?.rps),
    rssIdleMb: hold?.rssIdleMb ?? NaN,
    rssAt1000Mb: hold?.rssPeakMb ?? NaN,
    holding: hold?.holding ?? NaN,
    errors
  }
}

const f = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "-")
const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "-")

/** The results table: one column per target, one row per metric. */
export const table = (rows: ReadonlyArray<Summary>, opts: { connections: number; rate: number; holdStreams: number; gapMs: number }): string => {
  const metrics: Array<[string, (s: Summary) => string]> = [
    [`req/s @ c=${opts.connections} (JSON)`, (s) => f(s.rps)],
    ["  throughput vs raw", (s) => ratio(s.rpsVsRaw)],
    ["CPU µs / request (JSON)", (s) => f(s.cpuUsPerReq)],
    ["  CPU vs raw", (s) => ratio(s.cpuVsRaw)],
    ["CPU µs / streamed request", (s) => f(s.cpuUsPerStream)],
    ["  CPU (stream) vs raw", (s) => ratio(s.cpuStreamVsRaw)],
    [`latency @ ${opts.rate}/s p50 ms`, (s) => f(s.rateMs.p50, 3)],
    ["  p90 ms", (s) => f(s.rateMs.p90, 3)],
    ["  p99 ms", (s) => f(s.rateMs.p99, 3)],
    ["  max ms", (s) => f(s.rateMs.max, 1)],
    ["SSE TTFB p50 ms", (s) => f(s.sseTtfbMs.p50, 3)],
    ["  TTFB p99 ms", (s) => f(s.sseTtfbMs.p99, 3)],
    ["SSE total p50 ms", (s) => f(s.sseTotalMs.p50, 3)],
    ["  total p99 ms", (s) => f(s.sseTotalMs.p99, 3)],
    [`SSE ${opts.gapMs} ms gap: TTFB p50 ms`, (s) => f(s.gapTtfbMs, 3)],
    ["  added TTFB vs raw ms", (s) => f(s.addedTtfbMs, 3)],
    ["  event delay p50 / p90 ms", (s) => `${f(s.eventDelayMs.p50, 2)} / ${f(s.eventDelayMs.p90, 2)}`],
    ["  event delay p99 / max ms", (s) => `${f(s.eventDelayMs.p99, 2)} / ${f(s.eventDelayMs.max, 1)}`],
    ["all Sidecars at once: CPU vs sidecar", (s) => ratio(s.pairCpuVsBase)],
    ["  throughput vs sidecar", (s) => ratio(s.pairRpsVsBase)],
    ["RSS idle MB", (s) => f(s.rssIdleMb, 1)],
    [`RSS @ ${opts.holdStreams} open streams MB`, (s) => f(s.rssAt1000Mb, 1)],
    ["  streams held at once", (s) => f(s.holding)],
    ["errors (all phases)", (s) => f(s.errors)]
  ]
  const cells = metrics.map(([name, get]) => [name, ...rows.map(get)])
  const header = ["metric", ...rows.map((r) => r.target)]
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)))
  const line = (c: ReadonlyArray<string>) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i] ?? 0) : x.padStart(widths[i] ?? 0))).join(" | ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...cells.map(line)].join("\n")
}

export interface Check { readonly target: string; readonly name: string; readonly met: boolean | undefined; readonly detail: string }

/** The four targets, for each Sidecar column. `undefined` = not measured in this run. */
/**
 * Held-back events: a proxy that buffers delays most events by up to a whole gap or more. Not
 * buffered = events arrive within 2 ms at the median and within half a gap at p90, all of them.
 */
export const buffered = (s: Summary, gapMs: number): boolean =>
  !(s.eventDelayMs.p50 <= 2 && s.eventDelayMs.p90 <= gapMs / 2 && s.eventsMissing <= 0)

export const checks = (s: Summary, holdStreams: number, gapMs: number): Array<Check> => {
  const known = (...xs: Array<number>) => xs.every((x) => Number.isFinite(x))
  const c = (name: string, inputs: Array<number>, met: () => boolean, detail: string): Check =>
    ({ target: s.target, name, met: known(...inputs) ? met() : undefined, detail })
  return [
    c("CPU/request ≤ 2× raw and throughput ≥ 0.5× raw @ c=50", [s.cpuVsRaw, s.rpsVsRaw], () => s.cpuVsRaw <= 2 && s.rpsVsRaw >= 0.5,
      `CPU ${ratio(s.cpuVsRaw)}, throughput ${ratio(s.rpsVsRaw)}`),
    c("added stream TTFB ≤ 0.5 ms over raw, no buffering", [s.addedTtfbMs, s.eventDelayMs.p90],
      () => s.addedTtfbMs <= 0.5 && !buffered(s, gapMs),
      `added TTFB ${f(s.addedTtfbMs, 3)} ms; ${buffered(s, gapMs) ? "BUFFERED" : "not buffered"}: event delay p50 ` +
        `${f(s.eventDelayMs.p50, 2)} ms, p90 ${f(s.eventDelayMs.p90, 2)} ms (p99 ${f(s.eventDelayMs.p99, 2)}), events missing ${s.eventsMissing}`),
    c("CPU/streamed request ≤ 1.3× raw", [s.cpuStreamVsRaw], () => s.cpuStreamVsRaw <= 1.3, `${ratio(s.cpuStreamVsRaw)}`),
    c(`RSS ≤ 200 MB holding ${holdStreams} open streams`, [s.rssAt1000Mb], () => s.rssAt1000Mb <= 200 && s.holding >= holdStreams,
      `${f(s.rssAt1000Mb, 1)} MB with ${f(s.holding)} streams open`)
  ]
}

/**
 * What info logging (issue 5) and the usage ledger (issue 4) cost, from the "pair" phase: at most
 * 5% more CPU per request and 5% less throughput. The base Sidecar logs at warn with the ledger on,
 * so the info Sidecar's ratios are logging's cost, and the ledger's cost is the inverse of the
 * ledger-off Sidecar's ratios.
 */
export const overheadChecks = (s: Summary): Array<Check> => {
  const known = Number.isFinite(s.pairCpuVsBase) && Number.isFinite(s.pairRpsVsBase)
  const check = (name: string, cpu: number, rps: number): Check => ({
    target: s.target,
    name,
    met: known ? cpu <= 1.05 && rps >= 0.95 : undefined,
    detail: `CPU/request ${ratio(cpu)}, throughput ${ratio(rps)} (run at once, medians of same-round ratios)`
  })
  if (s.target.endsWith("-nousage")) return [check("the usage ledger costs ≤ 5% (sidecar vs this one)", 1 / s.pairCpuVsBase, 1 / s.pairRpsVsBase)]
  if (s.target.startsWith("sidecar-")) return [check("info logging costs ≤ 5% (this one vs sidecar at warn)", s.pairCpuVsBase, s.pairRpsVsBase)]
  return []
}

export const printChecks = (list: ReadonlyArray<Check>): string =>
  list.map((k) => `  [${k.met === undefined ? "n/a " : k.met ? " MET" : "MISS"}] ${k.target}: ${k.name} — ${k.detail}`).join("\n")
