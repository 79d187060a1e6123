/**
 * The OTLP/HTTP exporters (metrics, traces) for a target, wrapped so that an unreachable collector
 * is logged once when it starts failing and once when it recovers, never per export.
 */
import { ExportResultCode, type ExportResult } from "@opentelemetry/core"
import type { OTLPMetricExporter as JsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import type { OTLPMetricExporter as ProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto"
import type { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import type { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto"
import type { PushMetricExporter } from "@opentelemetry/sdk-metrics"
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base"
import type { OtlpProtocol, OtlpTarget } from "./OtelEnv.js"

/**
 * The wire format actually used: OTLP/HTTP with protobuf (the OTel default) or JSON bodies.
 * `grpc` is not supported (it needs the -grpc exporters and a gRPC stack): it falls back to
 * http/protobuf, with a warning at startup.
 */
export const effectiveProtocol = (requested: OtlpProtocol): "http/json" | "http/protobuf" =>
  requested === "http/json" ? "http/json" : "http/protobuf"

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

/**
 * The exporter modules are imported only when an OTLP target is configured: loaded, they cost
 * about 16 MB of RSS (protobuf definitions included) that a Prometheus-only Sidecar never uses.
 */
export type MetricExporterClass = typeof JsonMetricExporter | typeof ProtoMetricExporter
export type SpanExporterClass = typeof JsonTraceExporter | typeof ProtoTraceExporter

export const loadMetricExporter = async (t: OtlpTarget): Promise<MetricExporterClass> =>
  effectiveProtocol(t.protocol) === "http/json"
    ? (await import("@opentelemetry/exporter-metrics-otlp-http")).OTLPMetricExporter
    : (await import("@opentelemetry/exporter-metrics-otlp-proto")).OTLPMetricExporter

export const loadSpanExporter = async (t: OtlpTarget): Promise<SpanExporterClass> =>
  effectiveProtocol(t.protocol) === "http/json"
    ? (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter
    : (await import("@opentelemetry/exporter-trace-otlp-proto")).OTLPTraceExporter

export const metricExporter = (
  t: OtlpTarget,
  report: (h: ExportHealth) => void,
  Exporter: MetricExporterClass
): PushMetricExporter => {
  const inner = new Exporter(config(t))
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

export const spanExporter = (t: OtlpTarget, report: (h: ExportHealth) => void, Exporter: SpanExporterClass): SpanExporter => {
  const inner = new Exporter(config(t))
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
