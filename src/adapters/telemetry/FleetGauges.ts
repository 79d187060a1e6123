/**
 * Live per-backend gauges read from `FleetStore.view` at collection time (each scrape, each OTLP
 * export), never on the request path: in cooldown (1/0) and the rate window's remaining sends.
 */
import { ValueType, type HrTime } from "@opentelemetry/api"
import { emptyResource } from "@opentelemetry/resources"
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type GaugeMetricData,
  type MetricProducer
} from "@opentelemetry/sdk-metrics"
import { Effect, Option } from "effect"
import type { BackendView } from "../../domain/Fleet.js"
import { FleetStore } from "../../domain/ports/FleetStore.js"

export const IN_COOLDOWN = "sidecar_backend_in_cooldown"
export const RATE_WINDOW_REMAINING = "sidecar_backend_rate_window_remaining"

/** The gauges' Prometheus names (gauges keep their OTel name). */
export const gaugeNames: ReadonlyArray<string> = [IN_COOLDOWN, RATE_WINDOW_REMAINING]

const gauge = (
  name: string,
  description: string,
  points: ReadonlyArray<readonly [BackendView, number]>,
  time: HrTime
): GaugeMetricData => ({
  descriptor: { name, description, unit: "", valueType: ValueType.INT },
  dataPointType: DataPointType.GAUGE,
  aggregationTemporality: AggregationTemporality.CUMULATIVE,
  dataPoints: points.map(([v, value]) => ({
    startTime: time,
    endTime: time,
    attributes: { backend: v.backend.id, pool: v.backend.pool },
    value
  }))
})

/** The gauges' data for one collection. */
export const gaugeData = (views: ReadonlyArray<BackendView>, time: HrTime): Array<GaugeMetricData> => {
  const remaining: Array<readonly [BackendView, number]> = []
  for (const v of views) if (Option.isSome(v.rateWindowRemaining)) remaining.push([v, v.rateWindowRemaining.value])
  const out = [
    gauge(IN_COOLDOWN, "1 while the backend is cooling down, else 0", views.map((v) => [v, Option.isSome(v.coolingUntil) ? 1 : 0]), time)
  ]
  if (remaining.length > 0) {
    out.push(gauge(RATE_WINDOW_REMAINING, "Sends left in the backend's current 60 s rpm window (backends with rpm)", remaining, time))
  }
  return out
}

const hrNow = (): HrTime => {
  const ms = Date.now()
  return [Math.floor(ms / 1000), (ms % 1000) * 1_000_000]
}

/**
 * A MetricProducer for the readers' `metricProducers`: the SDK merges its scope into each
 * collection beside the Effect metrics. `run` runs an Effect needing FleetStore (the layer's runtime).
 */
export const producer = (
  run: <A>(effect: Effect.Effect<A, never, FleetStore>) => Promise<A>
): MetricProducer => ({
  collect: async (): Promise<CollectionResult> => {
    const views = await run(Effect.flatMap(FleetStore, (f) => f.view))
    return {
      resourceMetrics: {
        // The reader keeps the SDK's resource and ignores this one.
        resource: emptyResource(),
        scopeMetrics: [{ scope: { name: "sidecar/fleet" }, metrics: gaugeData(views, hrNow()) }]
      },
      errors: []
    }
  }
})
