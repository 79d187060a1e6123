/**
 * All of telemetry export from the environment (OTEL_* variables): metrics (Prometheus route,
 * OTLP push, live fleet gauges) and traces: what the app wires (routes, tracing); logs what it chose.
 */
import { Effect, Layer, type Scope } from "effect"
import type { FleetStore } from "../../domain/ports/FleetStore.js"
import type { HttpRoute } from "../http/HttpRoutes.js"
import * as MetricsExport from "./MetricsExport.js"
import type { TelemetrySettings } from "./OtelEnv.js"
import { effectiveProtocol, safeUrl } from "./OtlpExporters.js"
import * as Tracing from "./Tracing.js"

/** One log line per ignored OTEL_* value, per protocol fallback, and what is exported where. */
export const announce = (s: TelemetrySettings): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (const problem of s.problems) yield* Effect.logWarning("otel_env_ignored").pipe(Effect.annotateLogs({ problem }))
    for (const [signal, target] of [["metrics", s.metrics], ["traces", s.traces]] as const) {
      if (target === undefined) continue
      const used = effectiveProtocol(target.protocol)
      if (used !== target.protocol) {
        yield* Effect.logWarning("otlp_protocol_fallback").pipe(
          Effect.annotateLogs({ signal, requested: target.protocol, used })
        )
      }
    }
    yield* Effect.logInfo("telemetry").pipe(Effect.annotateLogs({
      service_name: s.resource.serviceName,
      prometheus: s.prometheus ? "/metrics" : null,
      otlp_metrics: s.metrics === undefined ? null : safeUrl(s.metrics.url),
      otlp_metrics_interval_ms: s.metrics?.intervalMs ?? null,
      otlp_traces: s.traces === undefined ? null : safeUrl(s.traces.url)
    }))
  })

/**
 * Starts metrics export in the current scope (Prometheus reader, OTLP push, fleet gauges), logs
 * what was chosen, and returns the routes to mount (`/metrics` when Prometheus is on). Use this to
 * combine with other adapters' routes into one HttpRoutes.
 */
export const routes = (s: TelemetrySettings): Effect.Effect<ReadonlyArray<HttpRoute>, never, FleetStore | Scope.Scope> =>
  Effect.zipRight(announce(s), MetricsExport.make({ resource: s.resource, prometheus: s.prometheus, otlp: s.metrics }))

/** OTLP tracing when configured, else tracing disabled (every span a no-op). */
export const tracing = (s: TelemetrySettings): Layer.Layer<never> => Tracing.layer(s.traces, s.resource)
