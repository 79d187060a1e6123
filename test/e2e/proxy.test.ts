// The proxy end to end on 127.0.0.1: the official openai client → Sidecar (started as in
// production, in-process) → scripted mock upstreams. What the client assembles is what they sent.
import { afterEach, describe, expect, it } from "@effect/vitest"
import OpenAI from "openai"
import { request as httpRequest } from "node:http"
import { start, type RunningSidecar } from "../../src/app/Embedded.js"
import { chunk, MockUpstream, sse, usageChunk } from "../fakes/MockUpstream.js"

const running: Array<{ stop: () => Promise<void> }> = []
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop()
})

const upstream = async (...args: Parameters<typeof MockUpstream.start>) => {
  const m = await MockUpstream.start(...args)
  running.push({ stop: () => m.close() })
  return m
}

const backend = (id: string, m: MockUpstream, extra: Record<string, unknown> = {}) => ({
  id,
  pool: "primary",
  base_url: `${m.url}/v1`,
  api_key: `sk-${id}-secret`,
  ...extra
})

const sidecar = async (config: Record<string, unknown>): Promise<RunningSidecar> => {
  const s = await start({ logging: { level: "off" }, ...config })
  running.push(s)
  return s
}

const client = (s: RunningSidecar) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "client-key", maxRetries: 0 })

/** A request through node:http, which (unlike fetch) sends any header we ask for. */
const rawPost = (url: string, headers: Record<string, string>, body: string) =>
  new Promise<{ status: number }>((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers }, (res) => {
      res.resume()
      res.on("end", () => resolve({ status: res.statusCode ?? 0 }))
    })
    req.on("error", reject)
    req.end(body)
  })

const completion = (content: string, model = "up-model") => ({
  id: "cmpl-1",
  object: "chat.completion",
  created: 1,
  model,
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 }
})

describe("through the openai client", () => {
  it("non-streamed chat completion: the answer, the model rewrite, auth replaced, x-sidecar headers", async () => {
    const m = await upstream({ kind: "json", body: completion("Hello there") })
    const s = await sidecar({ backends: [backend("p1", m, { models: { "llama-70b": { upstream: "meta/llama-3.1-70b" } } })] })
    const { data, response } = await client(s).chat.completions
      .create({ model: "llama-70b", messages: [{ role: "user", content: "hi" }] })
      .withResponse()
    expect(data.choices[0]?.message.content).toBe("Hello there")
    expect(data.model).toBe("up-model") // the upstream's response reaches the client unchanged
    const seen = m.requests[0]!
    expect(JSON.parse(seen.body)).toEqual({ model: "meta/llama-3.1-70b", messages: [{ role: "user", content: "hi" }] })
    expect(seen.headers.authorization).toBe("Bearer sk-p1-secret")
    expect(seen.url).toBe("/v1/chat/completions")
    expect(response.headers.get("x-sidecar-backend")).toBe("p1")
    expect(response.headers.get("x-sidecar-pool")).toBe("primary")
    expect(response.headers.get("x-sidecar-phase")).toBe("direct")
    expect(response.headers.get("x-sidecar-attempts")).toBe("1")
    expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/)
  })

  it("streamed chat completion: the assembled text equals what the upstream streamed", async () => {
    const words = ["The", " quick", " brown", " fox", " jumps"]
    const m = await upstream({ kind: "sse", events: [...words.map((w) => sse(chunk(w))), sse(usageChunk(7, 5))], gapMs: 5 })
    const s = await sidecar({ backends: [backend("p1", m)] })
    const stream = await client(s).chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "go" }],
      stream: true
    })
    let text = ""
    let usageChunks = 0
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? ""
      if (c.usage) usageChunks++
    }
    expect(text).toBe(words.join(""))
    // Sidecar asked upstream for usage; the client did not, so it does not see the extra chunk.
    expect(JSON.parse(m.requests[0]!.body).stream_options).toEqual({ include_usage: true })
    expect(usageChunks).toBe(0)
  })

  it("embeddings and the models list pass through", async () => {
    const m = await upstream()
    m.reply(
      { kind: "json", body: { object: "list", data: [{ object: "embedding", index: 0, embedding: [0.25, -0.5] }], model: "e", usage: { prompt_tokens: 2, total_tokens: 2 } } },
      { kind: "json", body: { object: "list", data: [{ id: "m1", object: "model", created: 1, owned_by: "x" }] } }
    )
    const s = await sidecar({ backends: [backend("p1", m)] })
    const e = await client(s).embeddings.create({ model: "e", input: "hi", encoding_format: "float" })
    expect(e.data[0]?.embedding).toEqual([0.25, -0.5])
    const models = await client(s).models.list()
    expect(models.data.map((x) => x.id)).toEqual(["m1"])
    expect(m.requests[1]).toMatchObject({ method: "GET", url: "/v1/models" })
  })
})

describe("forwarding", () => {
  it("keeps the query, strips hop-by-hop headers, forwards custom ones, no key → no Authorization", async () => {
    const m = await upstream()
    const s = await sidecar({ backends: [{ id: "p1", pool: "primary", base_url: `${m.url}/v1` }] })
    const res = await rawPost(
      `${s.url}/v1/chat/completions?api-version=2024`,
      {
        "content-type": "application/json",
        authorization: "Bearer client",
        "x-custom": "yes",
        "openai-organization": "org-1",
        "keep-alive": "timeout=5",
        "proxy-authorization": "Basic xyz",
        te: "trailers"
      },
      JSON.stringify({ model: "m" })
    )
    expect(res.status).toBe(200)
    const seen = m.requests[0]!
    expect(seen.url).toBe("/v1/chat/completions?api-version=2024")
    expect(seen.headers.authorization).toBeUndefined()
    expect(seen.headers["x-custom"]).toBe("yes")
    expect(seen.headers["openai-organization"]).toBe("org-1")
    expect(seen.headers["keep-alive"]).toBeUndefined()
    expect(seen.headers["proxy-authorization"]).toBeUndefined()
    expect(seen.headers.te).toBeUndefined()
  })

  it("refuses a body over server.max_body_bytes with 413 in the OpenAI error shape", async () => {
    const m = await upstream()
    const s = await sidecar({ server: { max_body_bytes: 1000 }, backends: [backend("p1", m)] })
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", pad: "x".repeat(5000) }) })
    expect(res.status).toBe(413)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("request_too_large")
    expect(m.requests).toHaveLength(0)
  })

  it("reuses upstream connections: 20 sequential requests open at most 2", async () => {
    const m = await upstream()
    const s = await sidecar({ backends: [backend("p1", m)] })
    const c = client(s)
    for (let i = 0; i < 20; i++) await c.chat.completions.create({ model: "m", messages: [] })
    expect(m.requests).toHaveLength(20)
    expect(m.connections).toBeLessThanOrEqual(2)
  })
})

describe("failures over real HTTP", () => {
  it("a 429 with Retry-After: the next backend serves; the first is untouched until its cooldown ends", async () => {
    const a = await upstream()
    const b = await upstream()
    a.reply({ kind: "json", status: 429, headers: { "retry-after": "1" }, body: { error: { message: "slow down", type: "rate_limit", code: "rate_limited" } } })
    const s = await sidecar({ routing: { wait_if_shorter_than_ms: 0 }, backends: [backend("a", a), backend("b", b)] })
    const c = client(s)
    const first = await c.chat.completions.create({ model: "m", messages: [] }).withResponse()
    expect(first.response.headers.get("x-sidecar-backend")).toBe("b")
    expect(first.response.headers.get("x-sidecar-attempts")).toBe("2")
    for (let i = 0; i < 4; i++) await c.chat.completions.create({ model: "m", messages: [] })
    expect(a.requests).toHaveLength(1)
    await new Promise((r) => setTimeout(r, 1100))
    const later = await c.chat.completions.create({ model: "m", messages: [] }).withResponse()
    const later2 = await c.chat.completions.create({ model: "m", messages: [] }).withResponse()
    expect([later.response.headers.get("x-sidecar-backend"), later2.response.headers.get("x-sidecar-backend")]).toContain("a")
  })

  it("everything rate-limited: 503 AllPoolsExhausted with Retry-After and x-should-retry: false", async () => {
    const a = await upstream({ kind: "json", status: 429, headers: { "retry-after": "30" }, body: { error: { message: "no" } } })
    const s = await sidecar({
      primary_wait: { interval_ms: 10, max_retries: 1 },
      emergency: { max_attempts: 0 },
      backends: [backend("a", a)]
    })
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "m" }) })
    expect(res.status).toBe(503)
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(29)
    expect(res.headers.get("x-should-retry")).toBe("false")
    expect(res.headers.get("x-sidecar-phase")).toBe("exhausted")
    expect(res.headers.get("x-sidecar-backend")).toBeNull()
    const body = (await res.json()) as { error: { type: string; code: string; retry_after_ms: number; message: string } }
    expect(body.error).toMatchObject({ type: "AllPoolsExhausted", code: "all_pools_exhausted", message: "All provider pools exhausted for model m" })
    expect(body.error.retry_after_ms).toBeGreaterThan(28_000)
  })

  it("a caller-fault 400 is returned as-is after one attempt", async () => {
    const a = await upstream({ kind: "json", status: 400, body: { error: { message: "bad temperature", type: "invalid_request_error", code: "invalid_value" } } })
    const b = await upstream()
    const s = await sidecar({ backends: [backend("a", a), backend("b", b)] })
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m" }) })
    expect(res.status).toBe(400)
    expect(await res.json()).toEqual({ error: { message: "bad temperature", type: "invalid_request_error", code: "invalid_value" } })
    expect(a.requests).toHaveLength(1)
    expect(b.requests).toHaveLength(0)
  })

  it("a first-token timeout fails over to the next backend", async () => {
    const a = await upstream({ kind: "headersThenSilence" })
    const b = await upstream({ kind: "sse", events: [sse(chunk("ok"))] })
    const s = await sidecar({ backends: [backend("a", a, { first_token_timeout_ms: 200 }), backend("b", b)] })
    const started = Date.now()
    const stream = await client(s).chat.completions.create({ model: "m", messages: [], stream: true })
    let text = ""
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? ""
    expect(text).toBe("ok")
    expect(Date.now() - started).toBeGreaterThanOrEqual(190)
    expect(b.requests).toHaveLength(1)
  })

  it("a stream cut after some events ends with the in-band error event, never a clean end", async () => {
    const a = await upstream({ kind: "sse", events: [sse(chunk("one")), sse(chunk(" two")), sse(chunk(" three"))], cutAfter: 2 })
    const s = await sidecar({ backends: [backend("a", a)] })
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", stream: true }) })
    const text = await res.text()
    expect(res.status).toBe(200)
    expect(text).toContain('"content":"one"')
    expect(text).toContain('"type":"upstream_stream_error"')
    expect(text).not.toContain("[DONE]")
  })

  it("a stalled stream ends with the in-band error after stream_idle_timeout_ms", async () => {
    const a = await upstream({ kind: "sse", events: [sse(chunk("one"))], end: "hang", done: false })
    const s = await sidecar({ backends: [backend("a", a, { stream_idle_timeout_ms: 200 })] })
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", stream: true }) })
    const text = await res.text()
    expect(text).toContain('"content":"one"')
    expect(text).toContain('"type":"upstream_stream_error"')
  })

  it("a stream that ends without [DONE] ends promptly", async () => {
    const a = await upstream({ kind: "sse", events: [sse(chunk("only"))], done: false })
    const s = await sidecar({ backends: [backend("a", a)] })
    const started = Date.now()
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", stream: true }) })
    const text = await res.text()
    expect(text).toContain('"content":"only"')
    expect(text).not.toContain("upstream_stream_error")
    expect(Date.now() - started).toBeLessThan(1000)
  })
})

describe("the client going away", () => {
  it("before upstream headers: the upstream request is aborted at once", async () => {
    const a = await upstream({ kind: "silence" })
    const s = await sidecar({ backends: [backend("a", a)] })
    const req = httpRequest(`${s.url}/v1/chat/completions`, { method: "POST" })
    req.on("error", () => {})
    req.end(JSON.stringify({ model: "m" }))
    while (a.requests.length === 0) await new Promise((r) => setTimeout(r, 10))
    const closed = a.nextSocketClose(1000)
    const leftAt = Date.now()
    req.destroy()
    expect((await closed) - leftAt).toBeLessThan(200)
  })

  it("mid-stream: the upstream stream is aborted at once", async () => {
    const a = await upstream({ kind: "sse", events: Array.from({ length: 200 }, (_, i) => sse(chunk(`w${i} `))), gapMs: 20 })
    const s = await sidecar({ backends: [backend("a", a)] })
    const closed = a.nextSocketClose(3000)
    let leftAt = 0
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${s.url}/v1/chat/completions`, { method: "POST" }, (res) => {
        res.once("data", () => {
          leftAt = Date.now()
          req.destroy()
          resolve()
        })
      })
      req.on("error", () => {})
      req.end(JSON.stringify({ model: "m", stream: true }))
    })
    expect((await closed) - leftAt).toBeLessThan(200)
  })
})

describe("Sidecar's own answers", () => {
  it("healthz, readyz, unknown routes and unknown models", async () => {
    const a = await upstream()
    const s = await sidecar({ backends: [backend("a", a, { models: { known: {} } })] })
    expect(await (await fetch(`${s.url}/healthz`)).json()).toEqual({ status: "ok" })
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200)
    const nf = await fetch(`${s.url}/nope`)
    expect(nf.status).toBe(404)
    expect(((await nf.json()) as { error: { code: string } }).error.code).toBe("not_found")
    const unknown = await fetch(`${s.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "mystery" }) })
    expect(unknown.status).toBe(404)
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("model_not_found")
    const empty = await sidecar({})
    const notReady = await fetch(`${empty.url}/readyz`)
    expect(notReady.status).toBe(503)
  })

  it("proxy_keys: a client without a listed key gets 401, with one it is served", async () => {
    const a = await upstream()
    const s = await sidecar({ security: { proxy_keys: ["pk-good"] }, backends: [backend("a", a)] })
    const bad = await fetch(`${s.url}/v1/models`, { headers: { authorization: "Bearer pk-bad" } })
    expect(bad.status).toBe(401)
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key")
    const good = await fetch(`${s.url}/v1/models`, { headers: { authorization: "Bearer pk-good" } })
    expect(good.status).toBe(200)
    expect(a.requests[0]!.headers.authorization).toBe("Bearer sk-a-secret")
  })

  it("echoes x-request-id", async () => {
    const a = await upstream()
    const s = await sidecar({ backends: [backend("a", a)] })
    const res = await fetch(`${s.url}/v1/models`, { headers: { "x-request-id": "req-42" } })
    expect(res.headers.get("x-request-id")).toBe("req-42")
    expect(a.requests[0]!.headers["x-request-id"]).toBe("req-42")
  })
})
