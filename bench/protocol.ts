/**
 * What the bench's processes share: the request bodies, the IPC messages between the orchestrator
 * and its children (mock upstream, raw proxy, load generator), and percentile summaries.
 */

export const MODEL = "bench-model"
export const PATH = "/v1/chat/completions"
export const CLIENT_HEADERS: Record<string, string> = {
  "content-type": "application/json",
  authorization: "Bearer client-key"
}

/** The non-streamed chat request every target gets (wrk and the undici generators alike). */
export const JSON_BODY = JSON.stringify({
  model: MODEL,
  messages: [{ role: "user", content: "Say hello in one short sentence." }],
  max_tokens: 16
})

/**
 * A streamed chat request. `stream_options.include_usage` is set so Sidecar forwards the client's
 * bytes unchanged (without it, Sidecar re-serializes the body and drops the usage chunk).
 * `bench_events` / `bench_gap_ms` tell the mock upstream how to stream.
 */
export const sseBody = (events: number, gapMs: number): string =>
  JSON.stringify({
    model: MODEL,
    messages: [{ role: "user", content: "Count slowly." }],
    stream: true,
    stream_options: { include_usage: true },
    bench_events: events,
    bench_gap_ms: gapMs
  })

/** Percentiles in microseconds. */
export interface Pcts {
  readonly n: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

/** Nearest-rank percentiles of a sample (sorted in place). */
export const pcts = (xs: Array<number>): Pcts => {
  xs.sort((a, b) => a - b)
  const at = (q: number) => (xs.length === 0 ? NaN : xs[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)] ?? NaN)
  return { n: xs.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: xs.length === 0 ? NaN : (xs[xs.length - 1] ?? NaN) }
}

export const median = (xs: ReadonlyArray<number>): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2
}

/** Orchestrator → load generator. */
export type LoadCommand =
  | { readonly kind: "closed"; readonly origin: string; readonly connections: number; readonly durationMs: number }
  | { readonly kind: "rate"; readonly origin: string; readonly rate: number; readonly durationMs: number; readonly connections: number }
  | {
    readonly kind: "sse"
    readonly origin: string
    readonly concurrency: number
    readonly durationMs: number
    readonly maxStreams: number
    readonly events: number
    readonly gapMs: number
    /** Read the upstream's send timestamps out of the events (per-event delivery delay). */
    readonly eventTimes: boolean
    /** Worker i starts after i × this, so streams do not all arrive at the same instant. */
    readonly staggerMs: number
  }
  | {
    readonly kind: "hold"
    readonly origin: string
    readonly streams: number
    /** The mock's trickle: more events than the hold needs, `gapMs` apart. */
    readonly events: number
    readonly gapMs: number
    /** How long all streams are held open together once every one has its first event. */
    readonly holdMs: number
  }

export interface ClosedResult { readonly requests: number; readonly errors: number; readonly elapsedMs: number; readonly firstError?: string }
export interface RateResult {
  readonly sent: number
  readonly ok: number
  readonly errors: number
  readonly latencyUs: Pcts
  /** How late the generator itself fired sends (its own lag), max µs. */
  readonly maxSendLagUs: number
}
export interface SseResult {
  readonly streams: number
  readonly errors: number
  readonly incomplete: number
  readonly elapsedMs: number
  readonly ttfbUs: Pcts
  readonly totalUs: Pcts
  /** Upstream write → client read, per event (only with `eventTimes`). */
  readonly eventDelayUs: Pcts | undefined
  readonly eventsSeen: number
  /** The first error seen, if any (status or message). */
  readonly firstError: string | undefined
}
export interface HoldResult {
  readonly opened: number
  readonly errors: number
  readonly maxOpen: number
  /** From each stream's launch to its first event. */
  readonly ttfbUs: Pcts
  readonly firstError: string | undefined
}
export type LoadResult = ClosedResult | RateResult | SseResult | HoldResult

/** Messages over the IPC channels. */
export type ChildMessage =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "result"; readonly id: number; readonly result: LoadResult }
  | { readonly type: "failed"; readonly id: number; readonly error: string }
  | { readonly type: "holding"; readonly id: number; readonly open: number }

export interface LoadRequest { readonly id: number; readonly command: LoadCommand }

/** Monotonic clock in ns, shared by every process on the machine (CLOCK_MONOTONIC). */
export const nowNs = (): bigint => process.hrtime.bigint()

/** A forked child exits when the orchestrator goes away, however it went. */
export const exitWithParent = (): void => {
  process.on("disconnect", () => process.exit(0))
}
