// OTLP/HTTP metrics push to a collector on 127.0.0.1 (http/json): every instrument with its
// attributes and the scenario's values, the OTEL_* headers and resource; and a collector that is
// down or never answers neither slows nor fails a proxied request.
import { afterEach, describe, expect, it } from "@effect/vitest"
import { MockUpstream } from "../../fakes/MockUpstream.js"
import {
  closedPort,
  type Env,
  OtlpReceiver,
  post,
  type Received,
  runScenario,
  scenarioConfig,
  scenarioDeltas,
  sleep,
  startSidecar
} from "./harness.js"
import { attributes, closeTo, deltasFor, fromOtlp, type OtlpMetricsBody, otlpMetrics } from "./series.js"

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!()
})

const upstream = async () => {
  const m = await MockUpstream.start({ kind: "json", body: { ok: true } })
  cleanup.push(() => m.close())
  return m
}
const receiver = async (options: { silent?: boolean } = {}) => {
  const r = await OtlpReceiver.start(options)
  cleanup.push(() => r.close())
  return r
}
const withRpm = (m: MockUpstream) => {
  const c = scenarioConfig(m)
  return { ...c, backends: c.backends.map((b) => ({ ...b, rpm: 100 })) }
}
const isMetrics = (r: Received) => r.path === "/v1/metrics"

describe("OTLP/HTTP metrics", () => {
  it("speaks protobuf by default (OTEL_EXPORTER_OTLP_PROTOCOL unset), with the instrument names inside", async () => {
    const collector = await receiver()
    const m = await upstream()
    const s = await startSidecar(withRpm(m), { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_METRIC_EXPORT_INTERVAL: "100", OTEL_TRACES_EXPORTER: "none" })
    cleanup.push(s.stop)
    const first = await collector.waitFor(isMetrics)
    expect(first.headers["content-type"]).toBe("application/x-protobuf")
    // Protobuf keeps strings verbatim: the metric names and the service name are in the bytes.
    expect(String(first.body)).toContain("sidecar_primary_wait_enter")
    expect(String(first.body)).toContain("service.name")
  })

  it("pushes every instrument with its attributes and values, the resource and the headers", async () => {
    const collector = await receiver()
    const m = await upstream()
    const env: Env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_METRIC_EXPORT_INTERVAL: "100",
      OTEL_SERVICE_NAME: "sidecar-test",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test,team=llm%20infra",
      OTEL_EXPORTER_OTLP_HEADERS: "x-collector-key=k1,x-both=general",
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: "x-both=metrics",
      OTEL_TRACES_EXPORTER: "none"
    }
    const s = await startSidecar(withRpm(m), env)
    cleanup.push(s.stop)
    const first = await collector.waitFor(isMetrics)
    expect(first.headers["content-type"]).toContain("application/json")
    expect([first.headers["x-collector-key"], first.headers["x-both"]]).toEqual(["k1", "metrics"])
    const body0 = first.body as OtlpMetricsBody
    expect(attributes(body0.resourceMetrics[0]?.resource.attributes)).toMatchObject({
      "service.name": "sidecar-test",
      "deployment.environment": "test",
      team: "llm infra"
    })
    const before = fromOtlp(body0)
    const mark = collector.received.length

    const seen = m.requests.length
    expect((await runScenario(s.url, m)).map((a) => a.status)).toEqual([200, 200, 200, 503])
    // 3 answers and 8 429s: on any machine, as a wake at a cooldown's end never comes before it.
    expect(m.requests.length - seen).toBe(11)
    const expected = scenarioDeltas
    const last = 'sidecar_requests_total{model="m1",phase="exhausted",status_class="5xx"}'
    const done = await collector.waitFor((r) => isMetrics(r) && (fromOtlp(r.body as OtlpMetricsBody).get(last) ?? 0) > (before.get(last) ?? 0), 10_000, mark)
    const body = done.body as OtlpMetricsBody
    expect(closeTo(deltasFor(expected, before, fromOtlp(body)), expected)).toEqual(expected)

    // Each SPEC instrument under its OTel name, as the right point kind; the live gauges too.
    const kinds = Object.fromEntries(otlpMetrics(body).map((x) => [
      x.name,
      x.histogram !== undefined ? "histogram" : x.gauge !== undefined ? "gauge" : x.sum?.isMonotonic === true ? "counter" : "updown"
    ]))
    expect(kinds).toMatchObject({
      sidecar_requests: "counter",
      sidecar_request_duration_seconds: "histogram",
      sidecar_upstream_attempts: "counter",
      sidecar_backend_cooldowns: "counter",
      sidecar_backend_in_cooldown: "gauge",
      sidecar_backend_rate_window_remaining: "gauge",
      sidecar_primary_wait_enter: "counter",
      sidecar_primary_wait_recovery: "counter",
      sidecar_primary_wait_exhausted: "counter",
      sidecar_emergency_activations: "counter",
      sidecar_emergency_success: "counter",
      sidecar_all_pools_exhausted: "counter",
      sidecar_tokens: "counter",
      sidecar_cost_usd: "counter"
    })
    const series = fromOtlp(body)
    expect(series.get('sidecar_backend_in_cooldown{backend="p1",pool="primary"}')).toBeTypeOf("number")
    // 100 rpm, minus every send within the last minute.
    expect(series.get('sidecar_backend_rate_window_remaining{backend="p1",pool="primary"}')).toBe(100 - m.requests.length)
    expect(Object.keys(kinds).filter((n) => !n.startsWith("sidecar_"))).toEqual([])
  })

  const latencies = async (url: string, n: number) => {
    const out: Array<number> = []
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      const res = await post(url)
      await res.text()
      expect(res.status).toBe(200)
      out.push(performance.now() - t0)
    }
    return out
  }
  const failing = { OTEL_METRIC_EXPORT_INTERVAL: "50", OTEL_BSP_SCHEDULE_DELAY: "50", OTEL_EXPORTER_OTLP_TIMEOUT: "500" }

  it("a collector that refuses connections: requests stay fast and succeed, one log line per signal", async () => {
    const m = await upstream()
    m.setFallback({ kind: "json", body: { ok: true } })
    const s = await startSidecar(withRpm(m), { ...failing, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}` })
    const times = await latencies(s.url, 30)
    await sleep(300) // several failed exports
    expect(Math.max(...times)).toBeLessThan(250)
    const t0 = performance.now()
    await s.stop()
    expect(performance.now() - t0).toBeLessThan(7_000)
    const failures = s.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l["msg"] === "otlp_export_failed")
    expect(failures.map((f) => f["signal"]).sort()).toEqual(["metrics", "traces"])
  })

  it("a collector that accepts and never answers: requests stay fast, shutdown stays bounded", async () => {
    const collector = await receiver({ silent: true })
    const m = await upstream()
    const s = await startSidecar(withRpm(m), { ...failing, OTEL_EXPORTER_OTLP_ENDPOINT: collector.url })
    const times = await latencies(s.url, 30)
    await sleep(300)
    expect(collector.received.length).toBeGreaterThan(0)
    expect(Math.max(...times)).toBeLessThan(250)
    const t0 = performance.now()
    await s.stop()
    expect(performance.now() - t0).toBeLessThan(7_000)
  })
})
