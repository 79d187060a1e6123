/**
 * The OTLP/HTTP exporters (metrics, traces) for a target, wrapped so that an unreachable collector
 * is logged once when it starts failing and once when it recovers, never per export.
 */
import { ExportResultCode, type ExportResult } from "@opentelemetry/core"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import type { PushMetricExporter } from "@opentelemetry/sdk-metrics"
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base"
import type { OtlpProtocol, OtlpTarget } from "./OtelEnv.js"

/**
 * The wire format actually used. The installed exporters speak OTLP/HTTP JSON only; `http/protobuf`
 * needs @opentelemetry/exporter-{metrics,trace}-otlp-proto (not installed), and `grpc` the -grpc ones.
 */
export const effectiveProtocol = (_requested: OtlpProtocol): "http/json" => "http/json"

/** Export health events, for the log: the first failure after a success (or at start), and the recovery. */
export type ExportHealth =
  | { readonly _tag: "Failing"; readonly signal: "metrics" | "traces"; readonly url: string; readonly error: string }
  | { readonly _tag: "Recovered"; readonly signal: "metrics" | "traces"; readonly url: string }

/** The URL without credentials or query, for log lines. */
export const safeUrl = (url: string): string => {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return "(invalid url)"
  }
}

const tracker = (signal: "metrics" | "traces", url: string, report: (h: ExportHealth) => void) => {
  let failing = false
  return (result: ExportResult) => {
    if (result.code === ExportResultCode.SUCCESS) {
      if (failing) report({ _tag: "Recovered", signal, url: safeUrl(url) })
      failing = false
    } else if (!failing) {
      failing = true
      report({ _tag: "Failing", signal, url: safeUrl(url), error: result.error?.message ?? "export failed" })
    }
  }
}

const config = (t: OtlpTarget) => ({ url: t.url, headers: { ...t.headers }, timeoutMillis: t.timeoutMs })

export const metricExporter = (t: OtlpTarget, report: (h: ExportHealth) => void): PushMetricExporter => {
  const inner = new OTLPMetricExporter(config(t))
  const observe = tracker("metrics", t.url, report)
  return {
    export: (metrics, done) =>
      inner.export(metrics, (result) => {
        observe(result)
        done(result)
      }),
    forceFlush: () => inner.forceFlush(),
    selectAggregationTemporality: (type) => inner.selectAggregationTemporality(type),
    selectAggregation: (type) => inner.selectAggregation(type),
    shutdown: () => inner.shutdown()
  }
}

export const spanExporter = (t: OtlpTarget, report: (h: ExportHealth) => void): SpanExporter => {
  const inner = new OTLPTraceExporter(config(t))
  const observe = tracker("traces", t.url, report)
  return {
    export: (spans: Array<ReadableSpan>, done) =>
      inner.export(spans, (result) => {
        observe(result)
        done(result)
      }),
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown()
  }
}
