// Traces over OTLP/HTTP (json) to a collector on 127.0.0.1: the request span continues the client's
// traceparent and parents one span per upstream attempt; Sidecar's own context never goes upstream;
// with tracing off no tracer is ever called.
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Tracer } from "effect"
import * as Tracing from "../../../src/adapters/telemetry/Tracing.js"
import { fromEnv } from "../../../src/adapters/telemetry/OtelEnv.js"
import type { HttpProxyRequest, HttpUpstreamResponse } from "../../../src/adapters/upstream/HttpExchange.js"
import * as Lifecycle from "../../../src/domain/Lifecycle.js"
import type { RequestOutcome } from "../../../src/domain/RequestOutcome.js"
import { coreLayer } from "../../../src/app/MainLayer.js"
import { chunk, MockUpstream, sse, usageChunk } from "../../fakes/MockUpstream.js"
import { completion, configContext, decodeConfig, OtlpReceiver, post, startSidecar } from "./harness.js"
import { attributes } from "./series.js"

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!()
})

interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<{ key: string; value: Record<string, unknown> }>
}
interface TracesBody {
  readonly resourceSpans: ReadonlyArray<{ readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<Span> }> }>
}
const spansOf = (r: OtlpReceiver): Array<Span> =>
  r.received.filter((x) => x.path === "/v1/traces")
    .flatMap((x) => (x.body as TracesBody).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)))
const attrs = (s: Span) => attributes(s.attributes as never)

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
const CLIENT_SPAN = "00f067aa0ba902b7"
const TRACEPARENT = `00-${TRACE_ID}-${CLIENT_SPAN}-01`
const SERVER = 2
const CLIENT = 3

const setup = async () => {
  const collector = await OtlpReceiver.start()
  const a = await MockUpstream.start({ kind: "json", status: 429, body: { error: { message: "slow down" } } })
  const b = await MockUpstream.start({ kind: "json", body: completion })
  cleanup.push(() => collector.close(), () => a.close(), () => b.close())
  const backend = (id: string, m: MockUpstream) => ({ id, pool: "primary", base_url: `${m.url}/v1`, api_key: `sk-${id}-secret` })
  const config = { logging: { level: "off" }, routing: { wait_if_shorter_than_ms: 0 }, backends: [backend("a", a), backend("b", b)] }
  const env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/v1/traces`, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_BSP_SCHEDULE_DELAY: "20" }
  return { collector, a, b, config, env }
}

const request = (headers: Record<string, string>): HttpProxyRequest => {
  const json = { model: "m1", messages: [] }
  return {
    id: "req-trace-1",
    model: "m1",
    method: "POST",
    path: "/v1/chat/completions?x=1",
    headers: { "content-type": "application/json", ...headers },
    body: Buffer.from(JSON.stringify(json)),
    json,
    stream: false
  }
}

describe("tracing", () => {
  it("request span continues the client's trace and parents the attempt spans (429 on a, then b)", async () => {
    const { a, b, collector, config, env } = await setup()
    const settings = fromEnv(env)
    const layer = Tracing.layer(settings.traces, settings.resource).pipe(
      Layer.provideMerge(coreLayer),
      Layer.provideMerge(configContext(decodeConfig(config)))
    )
    const req = request({ traceparent: TRACEPARENT })
    await Effect.runPromise(Effect.gen(function*() {
      const outcome = yield* Lifecycle.handle(req).pipe(Tracing.withRequestSpan(req))
      const response = outcome.response as HttpUpstreamResponse
      response.body.resume()
      yield* Effect.promise(() => response.finished)
    }).pipe(Effect.provide(layer))) // releasing the layer flushes the spans

    const spans = spansOf(collector)
    const root = spans.find((s) => s.name === "sidecar.request")!
    expect(root).toMatchObject({ traceId: TRACE_ID, parentSpanId: CLIENT_SPAN, kind: SERVER })
    expect(attrs(root)).toMatchObject({
      request_id: "req-trace-1", model: "m1", phase: "direct", attempts: "2", backend: "b", pool: "primary",
      status: "200", "http.request.method": "POST", "url.path": "/v1/chat/completions"
    })
    const attempts = spans.filter((s) => s.name === "sidecar.attempt")
    expect(attempts.map((s) => [s.traceId, s.parentSpanId, s.kind])).toEqual([[TRACE_ID, root.spanId, CLIENT], [TRACE_ID, root.spanId, CLIENT]])
    expect(attempts.map(attrs).map((x) => [x["backend"], x["pool"], x["phase"], x["attempt"], x["outcome"], x["status"]]).sort()).toEqual([
      ["a", "primary", "direct", "1", "rate_limited", "429"],
      ["b", "primary", "direct", "2", "success", "200"]
    ])
    // The client's own traceparent is forwarded as it came; Sidecar adds none of its own.
    expect([a.requests[0]?.headers["traceparent"], b.requests[0]?.headers["traceparent"]]).toEqual([TRACEPARENT, TRACEPARENT])
  })

  it("through the HTTP server with tracing on: attempt spans exported, no traceparent upstream but the client's", async () => {
    const { a, b, collector, config, env } = await setup()
    const s = await startSidecar(config, env)
    cleanup.push(s.stop)
    expect((await post(s.url)).status).toBe(200) // a 429 → b
    expect((await post(s.url, { traceparent: TRACEPARENT })).status).toBe(200) // b (a cooling)
    await s.stop()
    expect(a.requests.map((r) => r.headers["traceparent"])).toEqual([undefined])
    expect(b.requests.map((r) => r.headers["traceparent"])).toEqual([undefined, TRACEPARENT])
    const attempts = spansOf(collector).filter((x) => x.name === "sidecar.attempt")
    expect(attempts.map(attrs).map((x) => `${x["backend"]}:${x["outcome"]}:${x["status"]}`)).toEqual(["a:rate_limited:429", "b:success:200", "b:success:200"])
    // The attempts hang off their request spans; the second request continues the client's trace.
    const requests = spansOf(collector).filter((x) => x.name === "sidecar.request")
    expect(requests).toHaveLength(2)
    expect(requests[1]).toMatchObject({ traceId: TRACE_ID, parentSpanId: CLIENT_SPAN })
    expect(attempts.map((x) => x.parentSpanId)).toEqual([requests[0]!.spanId, requests[0]!.spanId, requests[1]!.spanId])
  })

  it("a stream cut after its commit point and continued: the continuation's attempt is a child of the request span too", async () => {
    const collector = await OtlpReceiver.start()
    const m = await MockUpstream.start({ kind: "json", body: completion })
    cleanup.push(() => collector.close(), () => m.close())
    const role = { id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] }
    m.reply(
      { kind: "sse", events: [sse(role), sse(chunk("Hello")), sse(chunk(" wor"))], cutAfter: 3, end: "cut" },
      { kind: "sse", events: [sse(role), sse(chunk("ld")), sse(usageChunk(5, 3))] }
    )
    const config = {
      logging: { level: "off" },
      backends: [{ id: "a", pool: "primary", base_url: `${m.url}/v1`, api_key: "sk-a-secret", prefill_continuation: true }]
    }
    const s = await startSidecar(config, {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/v1/traces`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "20"
    })
    cleanup.push(s.stop)
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", traceparent: TRACEPARENT },
      body: JSON.stringify({ model: "m1", stream: true, messages: [{ role: "user", content: "hi" }] })
    })
    const text = await res.text()
    expect(text).toContain("[DONE]")
    expect(m.requests).toHaveLength(2)
    await s.stop() // flushes the spans

    const requests = spansOf(collector).filter((x) => x.name === "sidecar.request")
    expect(requests.map((x) => [x.traceId, x.parentSpanId])).toEqual([[TRACE_ID, CLIENT_SPAN]])
    const attempts = spansOf(collector).filter((x) => x.name === "sidecar.attempt")
    expect(attempts.map((x) => [x.traceId, x.parentSpanId, attrs(x)["attempt"]])).toEqual([
      [TRACE_ID, requests[0]!.spanId, "1"],
      [TRACE_ID, requests[0]!.spanId, "2"]
    ])
  })

  it("off: spans are no-ops, the tracer is never called, withRequestSpan adds no span", async () => {
    let calls = 0
    const counting = Tracer.make({
      span: () => {
        calls++
        throw new Error("the tracer was called")
      },
      context: (f) => f()
    })
    let inner: Option.Option<Tracer.Span> = Option.none()
    const program = Effect.gen(function*() {
      yield* Effect.void.pipe(Effect.withSpan("sidecar.attempt"))
      const probe = Effect.map(Effect.option(Effect.currentSpan), (span) => {
        inner = span
        return {} as RequestOutcome
      })
      yield* Tracing.withRequestSpan(request({ traceparent: TRACEPARENT }))(probe)
    })
    await Effect.runPromise(program.pipe(Effect.provide(Layer.merge(Layer.setTracer(counting), Tracing.disabled))))
    expect(calls).toBe(0)
    expect(Option.isNone(inner)).toBe(true)
  })
})
