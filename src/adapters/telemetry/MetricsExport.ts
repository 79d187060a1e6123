/**
 * Exports the Effect metrics (SPEC §7) through @effect/opentelemetry: Prometheus text at GET /metrics
 * on Sidecar's own port, OTLP/HTTP push, both, or neither; plus the live fleet gauges at each collection.
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { type MetricProducer, type MetricReader, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { Effect, Layer, Runtime, type Scope } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import * as M from "../../domain/Metrics.js"
import type { FleetStore } from "../../domain/ports/FleetStore.js"
import { type HttpRoute, HttpRoutes } from "../http/HttpRoutes.js"
import * as FleetGauges from "./FleetGauges.js"
import type { OtlpMetricsSettings, ResourceSettings } from "./OtelEnv.js"
import { type ExportHealth, loadMetricExporter, metricExporter } from "./OtlpExporters.js"

export interface MetricsExportSettings {
  readonly resource: ResourceSettings
  /** Serve Prometheus text at GET /metrics. */
  readonly prometheus: boolean
  /** Push over OTLP/HTTP at an interval. */
  readonly otlp: OtlpMetricsSettings | undefined
}

/** Logs an exporter's health change (one line when it starts failing, one when it recovers). */
export const logHealth = (h: ExportHealth): Effect.Effect<void> =>
  h._tag === "Failing"
    ? Effect.logWarning("otlp_export_failed").pipe(Effect.annotateLogs({ signal: h.signal, url: h.url, error: h.error }))
    : Effect.logInfo("otlp_export_recovered").pipe(Effect.annotateLogs({ signal: h.signal, url: h.url }))

export const resourceLayer = (r: ResourceSettings) =>
  OtelResource.layer({ serviceName: r.serviceName, attributes: { ...r.attributes } })

const fleetGauges = new Set(FleetGauges.gaugeNames)

/** The funnel counters (no labels): a series that first appears at 1 hides that event from rate(). */
const unlabelled = [
  M.primaryWaitEnter,
  M.primaryWaitRecovery,
  M.primaryWaitExhausted,
  M.emergencyActivations,
  M.emergencySuccess,
  M.allPoolsExhausted
]

/**
 * Only Sidecar's instruments: Effect's own runtime metrics (`effect_fiber_*`) share the global
 * registry but count only some fibers, so they would mislead. The fleet gauges come from
 * FleetGauges alone (an Effect gauge of the same name would export the family twice).
 */
export const sidecarOnly = (inner: MetricProducer): MetricProducer => ({
  collect: async (options) => {
    const result = await inner.collect(options)
    const keep = (name: string) => name.startsWith("sidecar_") && !fleetGauges.has(name)
    const scopeMetrics = result.resourceMetrics.scopeMetrics.map((s) => ({
      ...s,
      metrics: s.metrics.filter((m) => keep(m.descriptor.name))
    }))
    return { ...result, resourceMetrics: { ...result.resourceMetrics, scopeMetrics } }
  }
})

/** The GET /metrics route over a Prometheus exporter that never opens its own port. */
export const prometheusRoute = (exporter: PrometheusExporter): HttpRoute => ({
  prefix: "/metrics",
  handle: (req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    const path = (req.url ?? "/").split("?")[0]
    if (path !== "/metrics" && path !== "/metrics/") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n")
    } else if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n")
    } else {
      exporter.getMetricsRequestHandler(req, res)
    }
  }
})

/**
 * Starts the configured readers in the current scope (released: a final OTLP export, bounded) and
 * returns the routes to mount: `/metrics` when Prometheus is on. Readers are built lazily here,
 * never at import time. Reads FleetStore only when a reader collects.
 */
export const make = (
  settings: MetricsExportSettings
): Effect.Effect<ReadonlyArray<HttpRoute>, never, FleetStore | Scope.Scope> =>
  Effect.gen(function*() {
    if (!settings.prometheus && settings.otlp === undefined) return []
    // Exported at 0 from the start, so that rate()/increase() see the first event too.
    for (const counter of unlabelled) counter.unsafeValue([])
    const runtime = yield* Effect.runtime<FleetStore>()
    const gauges = FleetGauges.producer(Runtime.runPromise(runtime))
    const report = (h: ExportHealth) => void Runtime.runFork(runtime)(logHealth(h))
    const otlp = settings.otlp
    const Exporter = otlp === undefined ? undefined : yield* Effect.promise(() => loadMetricExporter(otlp))
    let prometheus: PrometheusExporter | undefined
    const readers = (): [MetricReader, ...Array<MetricReader>] => {
      const r: Array<MetricReader> = []
      if (settings.prometheus) {
        // No otel_scope_name label: the series carry exactly SPEC §7's labels.
        prometheus = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, metricProducers: [gauges] })
        r.push(prometheus)
      }
      if (otlp !== undefined && Exporter !== undefined) {
        r.push(new PeriodicExportingMetricReader({
          exporter: metricExporter(otlp, report, Exporter),
          exportIntervalMillis: otlp.intervalMs,
          exportTimeoutMillis: otlp.exportTimeoutMs,
          metricProducers: [gauges]
        }))
      }
      return r as [MetricReader, ...Array<MetricReader>]
    }
    const producer = yield* Effect.provide(OtelMetrics.makeProducer, resourceLayer(settings.resource))
    yield* OtelMetrics.registerProducer(sidecarOnly(producer), readers)
    return prometheus === undefined ? [] : [prometheusRoute(prometheus)]
  })

/** Metrics export as the server's extra routes (see `make` to combine with other routes). */
export const layer = (settings: MetricsExportSettings): Layer.Layer<HttpRoutes, never, FleetStore> =>
  Layer.scoped(HttpRoutes, make(settings))

/** No export: the Effect metrics still count in-process (tests read them with `Metric.value`). */
export const none: Layer.Layer<never> = Layer.empty
