// The OTEL_* environment, read from a record: endpoints per signal, headers, protocol, interval,
// resource, exporters lists, samplers; bad values reported and defaulted.
import { describe, expect, it } from "@effect/vitest"
import { fromEnv } from "../../../src/adapters/telemetry/OtelEnv.js"
import { effectiveProtocol, safeUrl } from "../../../src/adapters/telemetry/OtlpExporters.js"

describe("OtelEnv.fromEnv", () => {
  it("nothing set: Prometheus only, no OTLP, service sidecar", () => {
    expect(fromEnv({})).toEqual({
      resource: { serviceName: "sidecar", attributes: {} },
      prometheus: true,
      metrics: undefined,
      traces: undefined,
      problems: []
    })
  })

  it("OTEL_EXPORTER_OTLP_ENDPOINT: both signals under it, signal paths appended, defaults", () => {
    const s = fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/otlp/" })
    expect(s.metrics).toEqual({
      url: "http://collector:4318/otlp/v1/metrics",
      headers: {},
      protocol: "http/protobuf",
      timeoutMs: 10_000,
      intervalMs: 60_000,
      exportTimeoutMs: 30_000
    })
    expect(s.traces).toMatchObject({
      url: "http://collector:4318/otlp/v1/traces",
      sampler: { _tag: "AlwaysOn" },
      parentBased: true,
      scheduledDelayMs: 5_000
    })
  })

  it("signal endpoints as given; only the signals whose endpoint is set", () => {
    const s = fromEnv({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "https://m.example/custom" })
    expect(s.metrics?.url).toBe("https://m.example/custom")
    expect(s.traces).toBeUndefined()
    const t = fromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://t.example/v1/traces" })
    expect([t.metrics, t.traces?.url]).toEqual([undefined, "https://t.example/v1/traces"])
  })

  it("headers (percent-decoded, signal-specific wins), protocol, interval, timeout, resource", () => {
    const s = fromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_EXPORTER_OTLP_HEADERS: "api-key=a%20b, x=general",
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: "x=metrics",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc",
      OTEL_METRIC_EXPORT_INTERVAL: "5000",
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: "2500",
      OTEL_SERVICE_NAME: "edge-proxy",
      OTEL_RESOURCE_ATTRIBUTES: "service.name=ignored,deployment.environment=prod,region=eu%2Dwest"
    })
    expect(s.metrics).toEqual({
      url: "http://c:4318/v1/metrics",
      headers: { "api-key": "a b", x: "metrics" },
      protocol: "http/json",
      timeoutMs: 2500,
      intervalMs: 5000,
      exportTimeoutMs: 5000 // never longer than the interval
    })
    expect(s.traces?.headers).toEqual({ "api-key": "a b", x: "general" })
    expect(s.traces?.protocol).toBe("grpc")
    expect(s.resource).toEqual({ serviceName: "edge-proxy", attributes: { "deployment.environment": "prod", region: "eu-west" } })
    expect(fromEnv({ OTEL_RESOURCE_ATTRIBUTES: "service.name=from-attrs" }).resource.serviceName).toBe("from-attrs")
  })

  it("OTEL_*_EXPORTER lists and OTEL_SDK_DISABLED", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }
    expect(fromEnv({ ...endpoint, OTEL_METRICS_EXPORTER: "otlp" })).toMatchObject({ prometheus: false })
    expect(fromEnv({ ...endpoint, OTEL_METRICS_EXPORTER: "prometheus" })).toMatchObject({ prometheus: true, metrics: undefined })
    expect(fromEnv({ ...endpoint, OTEL_METRICS_EXPORTER: "none", OTEL_TRACES_EXPORTER: "none" })).toMatchObject({ prometheus: false, metrics: undefined, traces: undefined })
    expect(fromEnv({ OTEL_TRACES_EXPORTER: "otlp" }).traces?.url).toBe("http://localhost:4318/v1/traces")
    expect(fromEnv({ ...endpoint, OTEL_SDK_DISABLED: "true" })).toMatchObject({ prometheus: true, metrics: undefined, traces: undefined })
  })

  it("samplers", () => {
    const t = (v: Record<string, string>) => fromEnv({ OTEL_TRACES_EXPORTER: "otlp", ...v }).traces
    expect(t({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" })).toMatchObject({ sampler: { _tag: "Ratio", ratio: 0.25 }, parentBased: false })
    expect(t({ OTEL_TRACES_SAMPLER: "parentbased_always_off" })).toMatchObject({ sampler: { _tag: "AlwaysOff" }, parentBased: true })
  })

  it("bad values are reported and defaulted, never fatal", () => {
    const s = fromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_METRIC_EXPORT_INTERVAL: "soon",
      OTEL_EXPORTER_OTLP_PROTOCOL: "carrier-pigeon",
      OTEL_EXPORTER_OTLP_HEADERS: "novalue,=x",
      OTEL_TRACES_SAMPLER: "sometimes"
    })
    expect(s.metrics?.intervalMs).toBe(60_000)
    expect(s.metrics?.protocol).toBe("http/protobuf")
    expect(s.problems).toEqual([
      'OTEL_METRIC_EXPORT_INTERVAL: expected an integer ≥ 1, got "soon"; using 60000',
      'OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol "carrier-pigeon"; using http/protobuf',
      "OTEL_EXPORTER_OTLP_HEADERS: ignored entry 1 (expected key=value)",
      "OTEL_EXPORTER_OTLP_HEADERS: ignored entry 2 (expected key=value)",
      'OTEL_TRACES_SAMPLER: unsupported sampler "sometimes"; using parentbased_always_on'
    ])
  })
})

describe("OtlpExporters", () => {
  it("speaks http/protobuf or http/json as asked, grpc falls back to protobuf; log URLs lose credentials", () => {
    expect(effectiveProtocol("http/protobuf")).toBe("http/protobuf")
    expect(effectiveProtocol("http/json")).toBe("http/json")
    expect(effectiveProtocol("grpc")).toBe("http/protobuf")
    expect(safeUrl("https://user:pw@collector.example:4318/v1/metrics?token=x")).toBe("https://collector.example:4318/v1/metrics")
  })
})
