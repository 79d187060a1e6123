/**
 * Pure pieces of the upstream adapter: URL joining, header rules, request-body rewriting, error
 * bodies, usage extraction and the SSE tap, without sockets.
 */
import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { parseErrorBody } from "../../../src/adapters/upstream/ErrorBody.js"
import { clientResponseHeaders, upstreamRequestHeaders } from "../../../src/adapters/upstream/ForwardHeaders.js"
import { upstreamBody } from "../../../src/adapters/upstream/RequestBody.js"
import { SseTap } from "../../../src/adapters/upstream/SseTap.js"
import { openingError } from "../../../src/adapters/upstream/StreamOpeningError.js"
import { Observation } from "../../../src/domain/FailureClass.js"
import { usageFromJsonBody } from "../../../src/adapters/upstream/Usage.js"
import { parseBaseUrl, upstreamPath } from "../../../src/adapters/upstream/UpstreamUrl.js"
import { chunk, sse, usageChunk } from "../../fakes/MockUpstream.js"
import { request } from "./harness.js"

describe("upstreamPath", () => {
  const join = (base: string, path: string) => upstreamPath(parseBaseUrl(base), path)
  it("does not double the shared segment", () => {
    expect(join("https://h/v1", "/v1/chat/completions")).toBe("/v1/chat/completions")
    expect(join("https://h/v1/", "/v1/models")).toBe("/v1/models")
    expect(join("https://h/openai/v1", "/v1/models?x=1")).toBe("/openai/v1/models?x=1")
    expect(join("https://h/v1", "/v1?x=1")).toBe("/v1?x=1")
  })
  it("appends when the segments differ", () => {
    expect(join("https://h", "/v1/models")).toBe("/v1/models")
    expect(join("https://h/api", "/v1/models")).toBe("/api/v1/models")
    expect(join("https://h/v10", "/v1/models")).toBe("/v10/v1/models")
  })
  it("keeps query strings, the base's first", () => {
    expect(join("https://h/v1?api-version=2", "/v1/chat/completions?a=b")).toBe("/v1/chat/completions?api-version=2&a=b")
    expect(join("https://h/v1?api-version=2", "/v1/models")).toBe("/v1/models?api-version=2")
  })
})

describe("headers", () => {
  const pairs = (flat: Array<string>) => {
    const out: Array<[string, string]> = []
    for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string])
    return out
  }
  it("replaces Authorization, strips hop-by-hop and Connection-listed headers", () => {
    const flat = upstreamRequestHeaders({
      host: "proxy", authorization: "Bearer client", "content-length": "10", connection: "keep-alive, x-hop",
      "keep-alive": "timeout=5", te: "trailers", "transfer-encoding": "chunked", upgrade: "h2c", expect: "100-continue",
      "proxy-authorization": "p", "x-hop": "1", "openai-organization": "org", "x-custom": ["a", "b"], "accept-encoding": "gzip"
    }, Redacted.make("sk-1"))
    expect(pairs(flat)).toEqual([
      ["openai-organization", "org"], ["x-custom", "a"], ["x-custom", "b"], ["accept-encoding", "identity"],
      ["authorization", "Bearer sk-1"]
    ])
  })
  it("sends no Authorization for a backend without key", () => {
    expect(upstreamRequestHeaders({ authorization: "Bearer client", "x-a": "1" }, undefined)).toEqual(["x-a", "1"])
  })
  it("filters response headers", () => {
    expect(clientResponseHeaders({
      "content-type": "application/json", "content-length": "5", connection: "close", "transfer-encoding": "chunked",
      "retry-after": "3", "set-cookie": ["a=1", "b=2"], "proxy-authenticate": "x"
    })).toEqual({ "content-type": "application/json", "retry-after": "3", "set-cookie": ["a=1", "b=2"] })
  })
})

describe("upstreamBody", () => {
  it("forwards the client's bytes when nothing changes", () => {
    const req = request({ body: { model: "m", messages: [] } })
    const out = upstreamBody(req, "m")
    expect(out.bytes).toBe(req.body)
    expect(out.dropUsageChunk).toBe(false)
  })
  it("rewrites a mapped model", () => {
    const out = upstreamBody(request({ body: { model: "m", temperature: 0.5 } }), "vendor/m-70b")
    expect(JSON.parse(out.bytes.toString())).toEqual({ model: "vendor/m-70b", temperature: 0.5 })
  })
  it("asks for usage on streamed chat completions and remembers the client did not", () => {
    const out = upstreamBody(request({ body: { model: "m", stream: true, stream_options: { foo: 1 } } }), "m")
    expect(JSON.parse(out.bytes.toString()).stream_options).toEqual({ foo: 1, include_usage: true })
    expect(out.dropUsageChunk).toBe(true)
    const asked = request({ body: { model: "m", stream: true, stream_options: { include_usage: true } } })
    expect(upstreamBody(asked, "m")).toEqual({ bytes: asked.body, dropUsageChunk: false })
    const embeddings = request({ path: "/v1/embeddings", body: { model: "m", stream: true } })
    expect(upstreamBody(embeddings, "m").bytes).toBe(embeddings.body)
  })
  it("splices the usage option into the client's bytes when there is no stream_options, else re-serializes", () => {
    const text = ' \n {"model":"m","stream":true,"messages":[{"role":"user","content":"a  b\\n"}]}'
    const req = { ...request({ body: {} }), body: Buffer.from(text), json: JSON.parse(text) as Record<string, unknown> }
    const out = upstreamBody(req, "m")
    expect(out.bytes.toString()).toBe(' \n {"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"role":"user","content":"a  b\\n"}]}')
    expect(out.dropUsageChunk).toBe(true)
    // A null stream_options is a key already there: replaced by re-serializing, never duplicated.
    const nulled = upstreamBody(request({ body: { model: "m", stream: true, stream_options: null } }), "m")
    expect(nulled.bytes.toString().match(/stream_options/g)).toHaveLength(1)
    expect(JSON.parse(nulled.bytes.toString()).stream_options).toEqual({ include_usage: true })
    // A mapped model too: one serialization carries both changes.
    const mapped = JSON.parse(upstreamBody(request({ body: { model: "m", stream: true } }), "vendor/m").bytes.toString())
    expect(mapped).toEqual({ model: "vendor/m", stream: true, stream_options: { include_usage: true } })
  })
  it("leaves non-JSON bodies alone", () => {
    const req = request({ body: "not json" })
    expect(upstreamBody(req, "other").bytes).toBe(req.body)
  })
})

describe("parseErrorBody", () => {
  const parse = (s: string) => parseErrorBody(Buffer.from(s))
  it("reads OpenAI and top-level shapes, ignores numeric codes and junk", () => {
    expect(parse(`{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}`))
      .toEqual({ code: "context_length_exceeded", message: "too long" })
    expect(parse(`{"object":"error","message":"max context","code":400}`)).toEqual({ code: undefined, message: "max context" })
    expect(parse(`[{"error":{"code":"x","message":"y"}}]`)).toEqual({ code: "x", message: "y" })
    expect(parse(`{"error":"slow down"}`)).toEqual({ code: undefined, message: "slow down" })
    expect(parse(`<html>bad gateway</html>`)).toEqual({ code: undefined, message: undefined })
    expect(parse(`{"error":`)).toEqual({ code: undefined, message: undefined })
  })
})

describe("usageFromJsonBody", () => {
  it("parses only the usage object", () => {
    const body = JSON.stringify({
      choices: [{ message: { content: "the \"usage\": {\"prompt_tokens\": 99}" } }],
      usage: { prompt_tokens: 12, completion_tokens: 34, prompt_tokens_details: { cached_tokens: 0 } }
    })
    expect(usageFromJsonBody(Buffer.from(body))).toEqual({ promptTokens: 12, completionTokens: 34 })
    expect(usageFromJsonBody(Buffer.from(`{"usage":null}`))).toBeUndefined()
    expect(usageFromJsonBody(Buffer.from(`{"data":[],"usage":{"prompt_tokens":5,"total_tokens":5}}`)))
      .toEqual({ promptTokens: 5, completionTokens: undefined })
  })
})

describe("SseTap", () => {
  const run = (tap: SseTap, chunks: ReadonlyArray<string>) =>
    chunks.map((c) => tap.feed(Buffer.from(c))?.toString() ?? "").join("") + (tap.flush()?.toString() ?? "")

  it("passes events through, holding only a partial event", () => {
    const tap = new SseTap(false)
    const a = sse(chunk("Hel"))
    expect(tap.feed(Buffer.from(a.slice(0, 10)))).toBeUndefined()
    expect(tap.sawData).toBe(false)
    expect(tap.feed(Buffer.from(a.slice(10) + ": ping\n\n" + "data: x"))?.toString()).toBe(a + ": ping\n\n")
    expect(tap.sawData).toBe(true)
    expect(tap.events).toBe(2)
    expect(tap.flush()?.toString()).toBe("data: x")
  })

  it("understands CRLF and CR line endings, split anywhere", () => {
    const text = `data: {"a":1}\r\n\r\ndata: [DONE]\r\r`
    for (let cut = 1; cut < text.length; cut++) {
      const tap = new SseTap(false)
      expect(run(tap, [text.slice(0, cut), text.slice(cut)])).toBe(text)
      expect(tap.events).toBe(2)
      expect(tap.done).toBe(true)
    }
  })

  it("reads usage and drops the usage-only chunk when asked to", () => {
    const text = sse(chunk("a", { usage: null })) + sse(usageChunk(7, 3)) + sse("[DONE]")
    const dropping = new SseTap(true)
    expect(run(dropping, [text])).toBe(sse(chunk("a", { usage: null })) + sse("[DONE]"))
    expect([dropping.promptTokens, dropping.completionTokens]).toEqual([7, 3])
    const keeping = new SseTap(false)
    expect(run(keeping, [text.slice(0, 90), text.slice(90)])).toBe(text)
    expect([keeping.promptTokens, keeping.completionTokens]).toEqual([7, 3])
  })

  it("keeps usage riding on a content chunk, and multi-line data", () => {
    const tap = new SseTap(true)
    const withUsage = sse(chunk("z", { usage: { prompt_tokens: 1, completion_tokens: 2 } }))
    const multi = `data: {"choices":[],\ndata: "usage":{"prompt_tokens":4,"completion_tokens":5}}\n\n`
    expect(run(tap, [withUsage, multi])).toBe(withUsage)
    expect([tap.promptTokens, tap.completionTokens]).toEqual([4, 5])
  })

  it("passes malformed events untouched", () => {
    const tap = new SseTap(true)
    const text = `data: {"usage": {"prompt_tokens": 1,\n\nevent: weird\ndata\n\nid: 3\n\n` + sse(chunk("ok"))
    expect(run(tap, [text])).toBe(text)
    expect(tap.promptTokens).toBeUndefined()
    expect(tap.events).toBe(4)
  })

  it("discards a partial event at a break", () => {
    const tap = new SseTap(false)
    expect(tap.feed(Buffer.from(sse("1") + "data: {\"trunc"))?.toString()).toBe(sse("1"))
    tap.discard()
    expect(tap.flush()).toBeUndefined()
  })
})

describe("openingError: a stream's first data event that reports a failure", () => {
  const err = (error: unknown) => JSON.stringify({ error })
  it.each([
    ["OpenAI rate limit code", err({ message: "Rate limit reached", code: "rate_limit_exceeded" }), "rate_limited", "rate_limit_exceeded"],
    ["numeric 429", err({ message: "slow down", code: 429 }), "rate_limited", undefined],
    ["quota in the type", err({ message: "x", type: "insufficient_quota" }), "rate_limited", undefined],
    ["Anthropic-style overload", err({ type: "overloaded_error", message: "Overloaded" }), "server_error", undefined],
    ["numeric 503 status", err({ message: "down", status: 503 }), "server_error", undefined],
    ["server_error type", ` {"error" : {"message":"boom","type":"server_error"}}`, "server_error", undefined]
  ])("%s → %s", (_, data, kind, code) => {
    expect(openingError(data)).toEqual(Observation.StreamError({ kind: kind as "rate_limited" | "server_error", code }))
  })
  it.each([
    ["an answer", JSON.stringify(chunk("Hello"))],
    ["an error about the request", err({ message: "bad messages", type: "invalid_request_error", code: "invalid_messages" })],
    ["a content filter", err({ message: "filtered", code: "content_filter" })],
    ["an error string", err("something")],
    ["not JSON", `{"error": {"code": 429`],
    ["error not the first key", JSON.stringify({ id: "x", error: { code: 429 } })]
  ])("%s → none (the stream commits as it came)", (_, data) => {
    expect(openingError(data)).toBeUndefined()
  })
})

describe("SseTap.firstError", () => {
  const feedAll = (tap: SseTap, text: string, at: number) => {
    tap.feed(Buffer.from(text.slice(0, at)))
    tap.feed(Buffer.from(text.slice(at)))
    return tap.firstError
  }
  const limited = `{"error":{"code":"rate_limit_exceeded"}}`
  it("keeps the first data event when it opens with an error key, at every split point", () => {
    const text = `: comment\n\ndata: ${limited}\n\n`
    for (let at = 0; at <= text.length; at++) expect(feedAll(new SseTap(false), text, at)).toBe(limited)
  })
  it("a multi-line data event is joined; whitespace before the key is allowed", () => {
    const tap = new SseTap(false)
    tap.feed(Buffer.from(`data: { "error":\ndata: {"code":"x"}}\n\n`))
    expect(tap.firstError).toBe(`{ "error":\n{"code":"x"}}`)
  })
  it("only the first data event counts", () => {
    const tap = new SseTap(false)
    tap.feed(Buffer.from(`data: ${JSON.stringify(chunk("Hi"))}\n\ndata: ${limited}\n\n`))
    expect(tap.firstError).toBeUndefined()
  })
})
