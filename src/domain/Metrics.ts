/**
 * The instruments of SPEC §7 as Effect Metrics. Counters are `incremental` so that the
 * OpenTelemetry bridge exports them as monotonic sums (Prometheus `_total`). The live gauges of
 * backend state (`sidecar_backend_in_cooldown`, rate-window headroom) are read from the fleet at
 * export time, in the telemetry adapter.
 */
import { Metric, MetricBoundaries } from "effect"

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

export const requests = counter("sidecar_requests", "Requests answered, by model, final phase and status class")
export const requestDuration = Metric.histogram(
  "sidecar_request_duration_seconds",
  MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]),
  "Time from request arrival to the end of the response, by final phase"
)
export const upstreamAttempts = counter("sidecar_upstream_attempts", "Upstream attempts, by backend, pool and outcome")
export const backendCooldowns = counter("sidecar_backend_cooldowns", "Cooldowns started, by backend, pool and reason")
export const primaryWaitEnter = counter("sidecar_primary_wait_enter", "Requests that entered Primary-Wait")
export const primaryWaitRecovery = counter("sidecar_primary_wait_recovery", "Primary-Wait entries served by the primary pool")
export const primaryWaitExhausted = counter("sidecar_primary_wait_exhausted", "Primary-Wait entries that ran out of retries")
export const primaryWaitAbandoned = counter(
  "sidecar_primary_wait_abandoned",
  "Primary-Wait entries ended by a caller-fault answer or by the client leaving"
)
export const emergencyActivations = counter("sidecar_emergency_activations", "Requests that entered emergency mode")
export const emergencySuccess = counter("sidecar_emergency_success", "Requests served in emergency mode")
export const allPoolsExhausted = counter("sidecar_all_pools_exhausted", "Requests answered 503 AllPoolsExhausted")
export const streamBreaks = counter("sidecar_stream_breaks", "Committed streams broken after the commit point, by backend and kind")
export const streamContinuations = counter(
  "sidecar_stream_continuations",
  "What became of each broken stream: continued, or ended with an error event (by outcome)"
)
export const tokens = counter("sidecar_tokens", "Tokens reported by upstreams, by backend, model and kind")
export const costUsd = counter("sidecar_cost_usd", "Cost in USD at the configured prices, by backend and model")

/** The `status_class` label: 2xx, 4xx or 5xx. */
export const statusClass = (status: number): "2xx" | "4xx" | "5xx" =>
  status < 300 ? "2xx" : status < 500 ? "4xx" : "5xx"
