/**
 * The demo's Sidecar config (the YAML shape, snake_case) and the timings its script relies on:
 * short enough for the whole walk to take ~20 s, with ≥ 1 s of slack around every threshold.
 */
import type { SimulatedUpstream } from "./SimulatedUpstream.js"

export const timing = {
  /** A "long" Retry-After: far beyond the walk's own waits, so a key hinted this way stays benched. */
  longRetryAfterS: 30,
  /** A short Retry-After: under `wait_if_shorter_than_ms`, so the request waits for the same key. */
  shortRetryAfterS: 2,
  /** Just over `wait_if_shorter_than_ms`: fail over now, and the key is back a few seconds later. */
  mediumRetryAfterS: 4,
  waitIfShorterThanMs: 3000,
  primaryWaitIntervalMs: 2000,
  primaryWaitRetries: 3,
  emergencyDefaultRpm: 4,
  emergencyRpmFraction: 0.25,
  /** Bound on any single client request (the longest one waits ~6 s). */
  requestTimeoutMs: 20_000
} as const

/** `max(1, floor(default_rpm × rpm_fraction))` emergency requests per key per minute. */
export const emergencyPerKey = Math.max(1, Math.floor(timing.emergencyDefaultRpm * timing.emergencyRpmFraction))

export const MODEL = "demo-model"

const backend = (u: SimulatedUpstream, pool: string, upstreamModel: string, price: number) => ({
  id: u.name,
  pool,
  base_url: u.baseUrl,
  api_key: u.apiKey,
  timeout_ms: 5000,
  models: { [MODEL]: { upstream: upstreamModel, input_per_mtok: price, output_per_mtok: price } }
})

export const sidecarConfig = (
  primaries: ReadonlyArray<SimulatedUpstream>,
  fallbacks: ReadonlyArray<SimulatedUpstream>
): Record<string, unknown> => ({
  // No port: embedded, Sidecar listens on a free one.
  server: { host: "127.0.0.1", shutdown_grace_ms: 1000 },
  logging: { level: "off" },
  routing: {
    max_attempts: 4,
    pools: ["primary", "fallback"],
    wait_if_shorter_than_ms: timing.waitIfShorterThanMs
  },
  cooldown: { base_ms: 4000, multiplier: 2, max_ms: 60_000, honor_retry_after: true },
  primary_wait: { interval_ms: timing.primaryWaitIntervalMs, max_retries: timing.primaryWaitRetries },
  emergency: {
    rpm_fraction: timing.emergencyRpmFraction,
    default_rpm: timing.emergencyDefaultRpm,
    max_attempts: 3
  },
  backends: [
    ...primaries.map((u) => backend(u, "primary", "sim-llama-8b", 0)),
    ...fallbacks.map((u) => backend(u, "fallback", "sim-llama-70b", 0.88))
  ]
})
