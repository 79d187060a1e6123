// Flattens a Prometheus scrape and an OTLP/JSON metrics export into the same `name{labels}` → value
// map (OTLP names mapped as Prometheus does: monotonic sums get `_total`), and diffs two of them.
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import { seriesKey } from "./harness.js"

export type Series = Map<string, number>

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/**
 * Counters and gauges through parse-prometheus-text-format. Its histogram support merges labelled
 * series (prom2json's flattening keys on `le` only), so a histogram's `_count`/`_sum` samples are
 * read from their own lines.
 */
export const fromPrometheus = (text: string): Series => {
  const out: Series = new Map()
  const histograms = new Set<string>()
  for (const family of parsePrometheusTextFormat(text)) {
    if (family.type === "HISTOGRAM") {
      histograms.add(family.name)
      continue
    }
    for (const m of family.metrics) out.set(seriesKey(family.name, { ...m.labels }), Number(m.value))
  }
  for (const line of text.split("\n")) {
    const m = sampleLine.exec(line)
    if (m === null) continue
    const [, name = "", labels = "", value = ""] = m
    const base = name.replace(/_(count|sum)$/, "")
    if (base === name || !histograms.has(base)) continue
    out.set(seriesKey(name, Object.fromEntries([...labels.matchAll(labelPair)].map((p) => [p[1], p[2]]))), Number(value))
  }
  return out
}

interface KeyValue {
  readonly key: string
  readonly value: { readonly stringValue?: string; readonly intValue?: number | string; readonly doubleValue?: number }
}
interface NumberPoint {
  readonly attributes?: ReadonlyArray<KeyValue>
  readonly asInt?: number | string
  readonly asDouble?: number
}
interface HistogramPoint {
  readonly attributes?: ReadonlyArray<KeyValue>
  readonly count: number | string
  readonly sum?: number
}
export interface OtlpMetric {
  readonly name: string
  readonly sum?: { readonly isMonotonic?: boolean; readonly dataPoints: ReadonlyArray<NumberPoint> }
  readonly gauge?: { readonly dataPoints: ReadonlyArray<NumberPoint> }
  readonly histogram?: { readonly dataPoints: ReadonlyArray<HistogramPoint> }
}
export interface OtlpMetricsBody {
  readonly resourceMetrics: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<KeyValue> }
    readonly scopeMetrics: ReadonlyArray<{ readonly metrics: ReadonlyArray<OtlpMetric> }>
  }>
}

export const attributes = (kvs: ReadonlyArray<KeyValue> | undefined): Record<string, string> =>
  Object.fromEntries((kvs ?? []).map((kv) => [kv.key, String(kv.value.stringValue ?? kv.value.intValue ?? kv.value.doubleValue)]))

const numberOf = (p: NumberPoint) => Number(p.asDouble ?? p.asInt ?? 0)

export const otlpMetrics = (body: OtlpMetricsBody): Array<OtlpMetric> =>
  body.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))

export const fromOtlp = (body: OtlpMetricsBody): Series => {
  const out: Series = new Map()
  for (const m of otlpMetrics(body)) {
    if (m.sum !== undefined) {
      const name = m.sum.isMonotonic === true ? `${m.name}_total` : m.name
      for (const p of m.sum.dataPoints) out.set(seriesKey(name, attributes(p.attributes)), numberOf(p))
    }
    for (const p of m.gauge?.dataPoints ?? []) out.set(seriesKey(m.name, attributes(p.attributes)), numberOf(p))
    for (const p of m.histogram?.dataPoints ?? []) {
      out.set(seriesKey(`${m.name}_count`, attributes(p.attributes)), Number(p.count))
      out.set(seriesKey(`${m.name}_sum`, attributes(p.attributes)), Number(p.sum ?? 0))
    }
  }
  return out
}

/** after − before for each key of `expected`, missing = 0. */
export const deltasFor = (expected: Record<string, number>, before: Series, after: Series): Record<string, number> =>
  Object.fromEntries(Object.keys(expected).map((k) => [k, (after.get(k) ?? 0) - (before.get(k) ?? 0)]))

/** Compares deltas to the expected values (floats to 1e-12). */
export const closeTo = (actual: Record<string, number>, expected: Record<string, number>) =>
  Object.fromEntries(Object.entries(actual).map(([k, v]) => [k, Math.abs(v - (expected[k] ?? NaN)) < 1e-12 ? expected[k] : v]))
