/**
 * The undici upstream against a real mock server: what goes upstream (URL, headers, body) and
 * what comes back (headers, JSON usage), and connection reuse.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest"
import { MockUpstream } from "../../fakes/MockUpstream.js"
import { backend, httpResponse, makeRuntime, readAll, request, send } from "./harness.js"

const rt = makeRuntime()
let mock: MockUpstream

beforeEach(async () => {
  mock = await MockUpstream.start()
})
afterEach(() => mock.close())
afterAll(() => rt.dispose())

describe("UndiciUpstream forwarding", { timeout: 10_000 }, () => {
  it("joins base URL and path without doubling /v1, keeping the query", async () => {
    await readAll(httpResponse(await send(rt, backend(mock.port), request({ path: "/v1/models?limit=2" }))))
    await readAll(httpResponse(await send(rt, backend(mock.port, { base_url: `${mock.url}/openai/v1/` }), request({ path: "/v1/embeddings" }))))
    await readAll(httpResponse(await send(rt, backend(mock.port, { base_url: mock.url }), request({ path: "/v1/x?a=1&b=2" }))))
    expect(mock.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      "GET /v1/models?limit=2",
      "GET /openai/v1/embeddings",
      "GET /v1/x?a=1&b=2"
    ])
  })

  it("replaces Authorization, strips hop-by-hop headers upstream, forwards the rest", async () => {
    const reply = await send(rt, backend(mock.port), request({
      body: { model: "m" },
      headers: {
        authorization: "Bearer client-key", "openai-organization": "org-1", "x-custom": "yes", connection: "keep-alive",
        "keep-alive": "timeout=5", te: "trailers", expect: "100-continue", "proxy-authorization": "Basic x", host: "proxy.local",
        "content-length": "999"
      }
    }))
    await readAll(httpResponse(reply))
    const seen = mock.requests[0]?.headers ?? {}
    expect(seen["authorization"]).toBe("Bearer sk-test-1234")
    expect(seen["openai-organization"]).toBe("org-1")
    expect(seen["x-custom"]).toBe("yes")
    expect(seen["host"]).toBe(`127.0.0.1:${mock.port}`)
    expect(seen["content-length"]).toBe(String(Buffer.byteLength(`{"model":"m"}`)))
    for (const h of ["te", "expect", "proxy-authorization", "keep-alive", "traceparent", "b3"]) expect(seen[h]).toBeUndefined()
    expect(mock.requests[0]?.body).toBe(`{"model":"m"}`)
  })

  it("forwards no Authorization for a backend without key", async () => {
    const b = backend(mock.port, { api_key: undefined })
    await readAll(httpResponse(await send(rt, b, request({ headers: { authorization: "Bearer client-key" } }))))
    expect(mock.requests[0]?.headers["authorization"]).toBeUndefined()
  })

  it("strips hop-by-hop headers from the response, lower-cases names, keeps the rest", async () => {
    mock.reply({
      kind: "json",
      body: { ok: 1 },
      headers: { "X-Request-Id": "up-1", "Keep-Alive": "timeout=5", "Proxy-Authenticate": "x", "Set-Cookie": "a=1" }
    })
    const res = httpResponse(await send(rt, backend(mock.port), request()))
    expect(res.status).toBe(200)
    expect(res.headers["x-request-id"]).toBe("up-1")
    expect(res.headers["set-cookie"]).toBe("a=1")
    for (const h of ["keep-alive", "proxy-authenticate", "content-length", "connection", "transfer-encoding"]) {
      expect(res.headers[h]).toBeUndefined()
    }
    expect((await readAll(res)).text).toBe(`{"ok":1}`)
  })

  it("rewrites a mapped model and leaves the rest of the body", async () => {
    const b = backend(mock.port, { models: { "llama-70b": { upstream: "meta/llama-3.1-70b-instruct" } } })
    const req = request({ body: { model: "llama-70b", messages: [{ role: "user", content: "hi" }], temperature: 0 } })
    await readAll(httpResponse(await send(rt, b, req, "meta/llama-3.1-70b-instruct")))
    expect(JSON.parse(mock.requests[0]?.body ?? "")).toEqual({
      model: "meta/llama-3.1-70b-instruct", messages: [{ role: "user", content: "hi" }], temperature: 0
    })
  })

  it("forwards the body byte for byte when nothing is mapped", async () => {
    const raw = `{ "model" : "m",  "messages": [] , "n": 1.0 }`
    const req = { ...request({ body: { model: "m", messages: [], n: 1 } }), body: Buffer.from(raw) }
    await readAll(httpResponse(await send(rt, backend(mock.port), req)))
    expect(mock.requests[0]?.body).toBe(raw)
  })

  it("sets stream_options.include_usage upstream for streamed chat completions only", async () => {
    mock.setFallback({ kind: "sse", events: [`data: {"choices":[{"delta":{"content":"x"}}]}\n\n`] })
    await readAll(httpResponse(await send(rt, backend(mock.port), request({ body: { model: "m", stream: true } }))))
    expect(JSON.parse(mock.requests[0]?.body ?? "").stream_options).toEqual({ include_usage: true })
    await readAll(httpResponse(await send(rt, backend(mock.port), request({ path: "/v1/completions", body: { model: "m", stream: true } }))))
    expect(mock.requests[1]?.body).toBe(`{"model":"m","stream":true}`)
  })

  it("extracts usage from a JSON body and reports a complete end", async () => {
    mock.reply({ kind: "json", body: { id: "x", choices: [], usage: { prompt_tokens: 11, completion_tokens: 22, total_tokens: 33 } } })
    const res = httpResponse(await send(rt, backend(mock.port), request({ body: { model: "m" } })))
    await readAll(res)
    expect(await res.finished).toEqual({ promptTokens: 11, completionTokens: 22, end: "complete" })
  })

  it("a JSON body over 1 MB passes through whole, its usage not parsed; one just under it is", async () => {
    const usage = { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 }
    const sized = (bytes: number) => {
      const shell = JSON.stringify({ id: "x", pad: "", usage })
      return JSON.stringify({ id: "x", pad: "p".repeat(bytes - shell.length), usage })
    }
    for (const [bytes, tokens] of [[1024 * 1024 + 1, undefined], [1024 * 1024, 5]] as const) {
      const body = sized(bytes)
      expect(body.length).toBe(bytes)
      mock.reply({ kind: "raw", status: 200, body, headers: { "content-type": "application/json" } })
      const res = httpResponse(await send(rt, backend(mock.port), request({ body: { model: "m" } })))
      expect((await readAll(res)).text).toBe(body)
      expect((await res.finished).promptTokens).toBe(tokens)
    }
  })

  it("reuses keep-alive connections: 10 sequential requests, at most 2 connections", async () => {
    for (let i = 0; i < 10; i++) {
      const res = httpResponse(await send(rt, backend(mock.port), request({ body: { model: "m", i } })))
      await readAll(res)
      await res.finished
    }
    expect(mock.requests).toHaveLength(10)
    expect(mock.connections).toBeLessThanOrEqual(2)
  })

  it("passes a non-JSON body of any content type", async () => {
    const req = { ...request({ path: "/v1/audio/transcriptions", body: "x" }), headers: { "content-type": "multipart/form-data; boundary=z" } }
    await readAll(httpResponse(await send(rt, backend(mock.port), req)))
    expect(mock.requests[0]?.headers["content-type"]).toBe("multipart/form-data; boundary=z")
    expect(mock.requests[0]?.body).toBe("x")
  })
})
