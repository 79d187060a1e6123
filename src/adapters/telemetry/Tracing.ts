/**
 * Traces: a span per request (parent: the client's W3C `traceparent`, if any) and the domain's
 * span per upstream attempt, exported over OTLP/HTTP. Off, tracing is disabled and no span is made.
 */
import * as OtelResource from "@effect/opentelemetry/Resource"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import { resourceFromAttributes } from "@opentelemetry/resources"
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import { Effect, FiberRef, Layer, Option, Runtime, type Tracer } from "effect"
import type { RequestOutcome } from "../../domain/RequestOutcome.js"
import type { HeaderMap } from "../upstream/HttpExchange.js"
import type { OtlpTracesSettings, ResourceSettings } from "./OtelEnv.js"
import { type ExportHealth, loadSpanExporter, spanExporter } from "./OtlpExporters.js"
import { logHealth } from "./MetricsExport.js"

const traceparentFormat = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/

/** The client's W3C trace context as a parent span; none when absent or malformed (W3C §3.2). */
export const clientParent = (headers: HeaderMap): Tracer.ExternalSpan | undefined => {
  const header = headers["traceparent"]
  if (typeof header !== "string") return undefined
  const m = traceparentFormat.exec(header.trim().toLowerCase())
  if (m === null) return undefined
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined]
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  const state = headers["tracestate"]
  return OtelTracer.makeExternalSpan({
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16),
    traceState: typeof state === "string" ? state : undefined
  })
}

export interface TracedRequest {
  readonly id: string
  readonly model: string
  readonly method: string
  readonly path: string
  readonly headers: HeaderMap
}

/**
 * Runs the lifecycle of one request inside its span ("sidecar.request", kind server), continuing
 * the client's trace. Costs one FiberRef read when tracing is off. Sidecar's own context is never
 * sent upstream: the upstream adapter forwards the client's headers only. `onSpan` receives the
 * span, for the attempts that outlive the lifecycle (continuations of a broken stream).
 */
export const withRequestSpan = (request: TracedRequest, onSpan?: (span: Tracer.Span) => void) =>
<E extends { readonly _tag: string }, R>(self: Effect.Effect<RequestOutcome, E, R>): Effect.Effect<RequestOutcome, E, R> =>
  Effect.flatMap(FiberRef.get(FiberRef.currentTracerEnabled), (enabled) => {
    if (!enabled) return self
    const parent = clientParent(request.headers)
    const spanned = onSpan === undefined
      ? self
      : Effect.zipRight(Effect.map(Effect.option(Effect.currentSpan), Option.map(onSpan)), self)
    const traced = spanned.pipe(
      Effect.tap((o) =>
        Effect.annotateCurrentSpan({
          phase: o.phase,
          attempts: o.attempts,
          backend: o.backend,
          pool: o.pool,
          status: o.response.status,
          "http.response.status_code": o.response.status
        })
      ),
      Effect.tapError((e) => Effect.annotateCurrentSpan({ phase: "exhausted", error_type: e._tag }))
    )
    return Effect.withSpan(traced, "sidecar.request", {
      kind: "server",
      captureStackTrace: false,
      ...(parent === undefined ? { root: true } : { parent }),
      attributes: {
        request_id: request.id,
        model: request.model,
        "http.request.method": request.method,
        "url.path": request.path.split("?")[0]
      }
    })
  })

const sampler = (s: OtlpTracesSettings): Sampler => {
  const root = s.sampler._tag === "AlwaysOn"
    ? new AlwaysOnSampler()
    : s.sampler._tag === "AlwaysOff"
    ? new AlwaysOffSampler()
    : new TraceIdRatioBasedSampler(s.sampler.ratio)
  return s.parentBased ? new ParentBasedSampler({ root }) : root
}

/** The OTel tracer provider (batching, OTLP/HTTP) as Effect's tracer; flushed (bounded) on release. */
export const otlp = (settings: OtlpTracesSettings, resource: ResourceSettings): Layer.Layer<never> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const report = (h: ExportHealth) => void Runtime.runFork(runtime)(logHealth(h))
    const Exporter = yield* Effect.promise(() => loadSpanExporter(settings))
    const attributes = { serviceName: resource.serviceName, attributes: { ...resource.attributes } }
    const provider = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new BasicTracerProvider({
          resource: resourceFromAttributes(OtelResource.configToAttributes(attributes)),
          sampler: sampler(settings),
          spanProcessors: [
            new BatchSpanProcessor(spanExporter(settings, report, Exporter), {
              scheduledDelayMillis: settings.scheduledDelayMs,
              exportTimeoutMillis: settings.exportTimeoutMs,
              maxQueueSize: settings.maxQueueSize,
              maxExportBatchSize: Math.min(settings.maxExportBatchSize, settings.maxQueueSize)
            })
          ]
        })
      ),
      (p) =>
        Effect.tryPromise(() => p.shutdown()).pipe(Effect.ignore, Effect.interruptible, Effect.timeoutOption("3 seconds"))
    )
    return OtelTracer.layer.pipe(
      Layer.provide(Layer.succeed(OtelTracer.OtelTracerProvider, provider)),
      Layer.provide(OtelResource.layer(attributes))
    )
  }))

/** Tracing off: every span (the attempt spans in the domain included) is a no-op. */
export const disabled: Layer.Layer<never> = Layer.setTracerEnabled(false)

/** OTLP tracing when configured, else `disabled`. */
export const layer = (settings: OtlpTracesSettings | undefined, resource: ResourceSettings): Layer.Layer<never> =>
  settings === undefined ? disabled : otlp(settings, resource)
