// Transport faults end to end (SPEC §1, §2): resets, silences, slow and broken streams, and the 4xx
// that move on or go back to the caller. Each test checks what the client received, what each
// upstream saw (attempts and their timing) and that Sidecar serves a plain request right afterwards.
import { afterEach, describe, expect, it } from "@effect/vitest"
import OpenAI from "openai"
import type { MockUpstream } from "../../fakes/MockUpstream.js"
import { backend, chunk, type Faulty, Rig, sse, usageChunk } from "./harness.js"

let rig = new Rig()
afterEach(async () => {
  await rig.close()
  rig = new Rig()
})

/** `m1` on a backend: its upstream name and prices (USD per million tokens). */
const m1 = (upstream: string, input = 0, output = 0) => ({ m1: { upstream, input_per_mtok: input, output_per_mtok: output } })

/** Primary `a`, fallback `b`; no Primary-Wait, so a failed direct phase does not linger. */
const config = (
  a: MockUpstream,
  b: MockUpstream,
  options: { a?: Record<string, unknown>; b?: Record<string, unknown>; routing?: Record<string, unknown> } = {}
) => ({
  routing: { pools: ["primary", "fallback"], ...options.routing },
  primary_wait: { max_retries: 0 },
  backends: [
    backend("a", a, { models: m1("up-a", 1, 2), ...options.a }),
    backend("b", b, { pool: "fallback", models: m1("up-b", 3, 4), ...options.b })
  ]
})

const headers = (h: Headers) => ({
  backend: h.get("x-sidecar-backend"),
  pool: h.get("x-sidecar-pool"),
  phase: h.get("x-sidecar-phase"),
  attempts: h.get("x-sidecar-attempts")
})

/** The sum of every series of `name` whose labels include `backend="<id>"`. */
const sumFor = (series: Map<string, number>, name: string, id: string): number => {
  let total = 0
  for (const [k, v] of series) if (k.startsWith(`${name}{`) && k.includes(`backend="${id}"`)) total += v
  return total
}

const story = [sse(chunk("Once")), sse(chunk(" upon")), sse(chunk(" a time")), sse(usageChunk(10, 3))]

/** The model each upstream was asked for, in order. */
const modelsAsked = (m: MockUpstream) => m.requests.map((r) => (JSON.parse(r.body) as { model: string }).model)

const rowsOf = async (f: Faulty, ...columns: Array<string>) => {
  await rig.close() // drains the usage ledger
  return f.rows().map((r) => columns.map((c) => r[c]))
}

describe("before the commit point", () => {
  it("reset before headers: one retry on the same backend, then the fallback serves", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    a.reply({ kind: "reset" }, { kind: "reset" })
    b.reply({ kind: "sse", events: story, gapMs: 5 })
    const f = await rig.sidecar(config(a, b, { routing: { same_backend_retries: 1 } }))

    const ans = await f.chat()
    expect([ans.status, ans.text, ans.done, ans.error]).toEqual([200, "Once upon a time", true, undefined])
    expect(headers(ans.headers)).toEqual({ backend: "b", pool: "fallback", phase: "direct", attempts: "3" })
    // a saw the attempt and its one retry, b the third attempt, in that order.
    expect([a.requests.length, b.requests.length]).toEqual([2, 1])
    expect(a.requests[0]!.at).toBeLessThanOrEqual(a.requests[1]!.at)
    expect(a.requests[1]!.at).toBeLessThanOrEqual(b.requests[0]!.at)
    expect([...modelsAsked(a), ...modelsAsked(b)]).toEqual(["up-a", "up-a", "up-b"])

    await f.stillServes(a)
    expect(a.requests).toHaveLength(3)
    expect(await rowsOf(f, "backend", "attempt", "status", "outcome", "error_class")).toEqual([
      ["a", 1, null, "connect_error", "Transient"],
      ["a", 2, null, "connect_error", "Transient"],
      ["b", 3, 200, "success", "Success"],
      ["a", 1, 200, "success", "Success"]
    ])
  })

  it("accepted but silent: timeout_ms fails over once, never retried on the same backend", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    a.reply({ kind: "silence" })
    b.reply({ kind: "json", body: { id: "x", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: "from b" }, finish_reason: "stop" }] } })
    const f = await rig.sidecar(config(a, b, { a: { timeout_ms: 300 }, routing: { same_backend_retries: 1 } }))

    const closed = a.nextSocketClose(5000)
    const ans = await f.chat({ stream: false })
    expect([ans.status, ans.text]).toEqual([200, "from b"])
    expect(headers(ans.headers)).toEqual({ backend: "b", pool: "fallback", phase: "direct", attempts: "2" })
    expect([a.requests.length, b.requests.length]).toEqual([1, 1])
    // b was asked only once a's 300 ms were up (the timer starts before a has the body: 50 ms slack).
    const gap = b.requests[0]!.at - a.requests[0]!.at
    expect(gap).toBeGreaterThanOrEqual(250)
    expect(gap).toBeLessThan(3000)
    // The silent request was abandoned: its connection closed.
    await closed

    await f.stillServes(a)
    expect(a.requests).toHaveLength(2)
    expect(await rowsOf(f, "backend", "status", "outcome", "error_class")).toEqual([
      ["a", null, "timeout", "Timeout"],
      ["b", 200, "success", "Success"],
      ["a", 200, "success", "Success"]
    ])
  })

  it("headers then silence: first_token_timeout_ms fails over; the client sees only b's stream", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    a.reply({ kind: "headersThenSilence", headers: { "x-from-a": "1" } })
    b.reply({ kind: "sse", events: story, gapMs: 5, headers: { "x-from-b": "1" } })
    const f = await rig.sidecar(config(a, b, { a: { first_token_timeout_ms: 300 } }))

    const ans = await f.chat()
    expect([ans.status, ans.text, ans.done, ans.error]).toEqual([200, "Once upon a time", true, undefined])
    expect(headers(ans.headers)).toEqual({ backend: "b", pool: "fallback", phase: "direct", attempts: "2" })
    // Nothing of a's response reached the client, not even its headers.
    expect(ans.headers.get("x-from-a")).toBeNull()
    expect(ans.headers.get("x-from-b")).toBe("1")
    expect(ans.body).toBe([sse(chunk("Once")), sse(chunk(" upon")), sse(chunk(" a time")), sse("[DONE]")].join(""))
    expect([a.requests.length, b.requests.length]).toEqual([1, 1])
    const gap = b.requests[0]!.at - a.requests[0]!.at
    expect(gap).toBeGreaterThanOrEqual(250)
    expect(gap).toBeLessThan(3000)

    await f.stillServes(a)
    // (a's row has no status: the attempt failed before a response was committed, though a sent 200 headers.)
    expect(await rowsOf(f, "backend", "outcome", "error_class")).toEqual([
      ["a", "timeout", "Timeout"],
      ["b", "success", "Success"],
      ["a", "success", "Success"]
    ])
  })

  it("slow first token beyond first_token_timeout_ms: b serves and a's request is aborted", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    a.reply({ kind: "sse", events: [sse(chunk("LATE-A")), sse(usageChunk(1, 1))], firstDelayMs: 1000 })
    b.reply({ kind: "sse", events: story, gapMs: 5 })
    const f = await rig.sidecar(config(a, b, { a: { first_token_timeout_ms: 300 } }))

    const closed = a.nextSocketClose(5000)
    const ans = await f.chat()
    expect([ans.status, ans.text, ans.done, ans.error]).toEqual([200, "Once upon a time", true, undefined])
    expect(headers(ans.headers)).toEqual({ backend: "b", pool: "fallback", phase: "direct", attempts: "2" })
    expect(ans.body).not.toContain("LATE-A")
    expect([a.requests.length, b.requests.length]).toEqual([1, 1])
    expect(b.requests[0]!.at - a.requests[0]!.at).toBeGreaterThanOrEqual(250)
    // a's socket was closed by Sidecar before a would have sent its first event (at 1000 ms):
    // a kept-alive socket left alone would stay open for the server's 5 s keep-alive.
    const closedAt = await closed
    expect(closedAt - a.requests[0]!.at).toBeLessThan(1000)
    expect(a.socketCloses.length).toBeGreaterThanOrEqual(1)

    await f.stillServes(a)
    expect(await rowsOf(f, "backend", "outcome", "error_class")).toEqual([
      ["a", "timeout", "Timeout"],
      ["b", "success", "Success"],
      ["a", "success", "Success"]
    ])
  })

  it("400 context_length_exceeded: the next pool (larger model) serves, no cooldown for a", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    a.reply({
      kind: "raw",
      status: 400,
      headers: { "content-type": "application/json" },
      body: `{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}`
    })
    b.reply({ kind: "sse", events: story, gapMs: 5 })
    const f = await rig.sidecar(config(a, b, { b: { models: m1("up-b-128k", 3, 4) } }))
    const before = await f.metrics()

    const ans = await f.chat()
    expect([ans.status, ans.text, ans.done, ans.error]).toEqual([200, "Once upon a time", true, undefined])
    expect(headers(ans.headers)).toEqual({ backend: "b", pool: "fallback", phase: "direct", attempts: "2" })
    expect([modelsAsked(a), modelsAsked(b)]).toEqual([["up-a"], ["up-b-128k"]])
    expect(a.requests[0]!.at).toBeLessThanOrEqual(b.requests[0]!.at)

    const after = await f.metrics()
    expect(sumFor(after, "sidecar_backend_cooldowns_total", "a") - sumFor(before, "sidecar_backend_cooldowns_total", "a")).toBe(0)
    expect(after.get(`sidecar_backend_in_cooldown{backend="a",pool="primary"}`)).toBe(0)

    await f.stillServes(a) // a, the primary, serves again at once: it was not cooled down
    expect(await rowsOf(f, "backend", "status", "outcome", "error_class")).toEqual([
      ["a", 400, "client_error", "NextPool"],
      ["b", 200, "success", "Success"],
      ["a", 200, "success", "Success"]
    ])
  })

  it("400 content_filter: returned to the client as-is after exactly one attempt", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    const refusal = `{"error":{"message":"The response was filtered","type":"invalid_request_error","param":"prompt","code":"content_filter"}}`
    a.reply({ kind: "raw", status: 400, headers: { "content-type": "application/json" }, body: refusal })
    const f = await rig.sidecar(config(a, b))

    const ans = await f.chat()
    expect(ans.status).toBe(400)
    expect(ans.body).toBe(refusal)
    expect(ans.headers.get("content-type")).toBe("application/json")
    expect(ans.error?.code).toBe("content_filter")
    expect(headers(ans.headers)).toEqual({ backend: "a", pool: "primary", phase: "direct", attempts: "1" })
    expect([a.requests.length, b.requests.length]).toEqual([1, 0])

    await f.stillServes(a)
    expect(b.requests).toHaveLength(0)
    expect(await rowsOf(f, "backend", "status", "outcome", "error_class")).toEqual([
      ["a", 400, "client_error", "CallerFault"],
      ["a", 200, "success", "Success"]
    ])
  })

  it("a 200 stream opening with an in-band rate-limit error: a cools down, b serves; nothing of a reaches the client", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    const limited = { error: { message: "Rate limit reached for requests", type: "requests", code: "rate_limit_exceeded" } }
    a.reply({ kind: "sse", events: [sse(limited)], gapMs: 5 })
    b.reply({ kind: "sse", events: story, gapMs: 5 })
    const f = await rig.sidecar(config(a, b))
    const before = await f.metrics()

    const ans = await f.chat()
    expect([ans.status, ans.text, ans.done, ans.error]).toEqual([200, "Once upon a time", true, undefined])
    expect(ans.body).not.toContain("Rate limit reached")
    expect(headers(ans.headers)).toEqual({ backend: "b", pool: "fallback", phase: "direct", attempts: "2" })
    const after = await f.metrics()
    expect(sumFor(after, "sidecar_backend_cooldowns_total", "a") - sumFor(before, "sidecar_backend_cooldowns_total", "a")).toBe(1)
    expect(after.get(`sidecar_backend_in_cooldown{backend="a",pool="primary"}`)).toBe(1)

    await f.stillServes(b) // a is cooling: the fallback serves the plain request too
    expect(await rowsOf(f, "backend", "outcome", "error_class")).toEqual([
      ["a", "rate_limited", "RateLimited"],
      ["b", "success", "Success"],
      ["b", "success", "Success"]
    ])
  })

  it("a 200 stream opening with an in-band error about the request itself reaches the client as it came (one attempt)", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    const refused = { error: { message: "messages must not be empty", type: "invalid_request_error", code: "invalid_messages" } }
    a.reply({ kind: "sse", events: [sse(refused)], gapMs: 5 })
    const f = await rig.sidecar(config(a, b))

    const ans = await f.chat()
    expect([ans.status, ans.error]).toEqual([200, refused.error])
    expect(headers(ans.headers)).toEqual({ backend: "a", pool: "primary", phase: "direct", attempts: "1" })
    expect([a.requests.length, b.requests.length]).toEqual([1, 0])
    await f.stillServes(a)
  })

  it("a fallback answer reports the fallback's model and usage, streamed and not", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    const model = "fallback-model-v2"
    a.reply({
      kind: "json",
      status: 429,
      headers: { "retry-after": "120" },
      body: { error: { message: "slow down", type: "rate_limit", code: "rate_limited" } }
    })
    b.reply(
      {
        kind: "sse",
        events: [sse(chunk("Fall", { model })), sse(chunk("back", { model })), sse({ ...usageChunk(9, 4), model })],
        gapMs: 5
      },
      {
        kind: "json",
        body: {
          id: "x",
          object: "chat.completion",
          model,
          choices: [{ index: 0, message: { role: "assistant", content: "Fallback" }, finish_reason: "stop" }],
          usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 }
        }
      }
    )
    const f = await rig.sidecar(config(a, b, { b: { models: m1("up-b", 2, 10) } }))
    const usage = { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 }

    const t0 = Date.now()
    const streamed = await f.chat({ stream_options: { include_usage: true } })
    expect(Date.now() - t0).toBeLessThan(5000) // the 120 s Retry-After was not waited for
    expect([streamed.status, streamed.text, streamed.done, streamed.error]).toEqual([200, "Fallback", true, undefined])
    expect(streamed.usage).toEqual(usage)
    const chunks = streamed.events.filter((e) => typeof e === "object")
    expect(chunks).toHaveLength(3)
    expect(chunks.map((c) => (c as { model: string }).model)).toEqual([model, model, model])
    expect(headers(streamed.headers)).toEqual({ backend: "b", pool: "fallback", phase: "direct", attempts: "2" })

    // a is still cooling down: the next request goes straight to b.
    const plain = await f.chat({ stream: false })
    expect([plain.status, plain.text, plain.usage]).toEqual([200, "Fallback", usage])
    expect((JSON.parse(plain.body) as { model: string }).model).toBe(model)
    expect(headers(plain.headers)).toEqual({ backend: "b", pool: "fallback", phase: "direct", attempts: "1" })
    expect([a.requests.length, b.requests.length]).toEqual([1, 2])
    expect(modelsAsked(b)).toEqual(["up-b", "up-b"])

    await f.stillServes(b)
    const rows = await rowsOf(f, "backend", "status", "outcome", "upstream_model", "prompt_tokens", "completion_tokens", "cost_usd")
    // b's prices: 9 × $2 + 4 × $10 per million tokens.
    const cost = (9 * 2 + 4 * 10) / 1e6
    expect(rows.map((r) => r.slice(0, 6))).toEqual([
      ["a", 429, "rate_limited", "up-a", null, null],
      ["b", 200, "success", "up-b", 9, 4],
      ["b", 200, "success", "up-b", 9, 4],
      ["b", 200, "success", "up-b", null, null]
    ])
    expect(rows[1]![6]).toBeCloseTo(cost, 12)
    expect(rows[2]![6]).toBeCloseTo(cost, 12)
  })
})

describe("the stream itself", () => {
  it("a malformed event mid-stream passes through untouched; the answer completes and is accounted", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    a.reply({ kind: "sse", events: [sse(chunk("Hello")), "data: {not json\n\n", sse(chunk(" world")), sse(usageChunk(11, 2))], gapMs: 5 })
    const f = await rig.sidecar(config(a, b))

    const ans = await f.chat()
    expect([ans.status, ans.text, ans.done, ans.error]).toEqual([200, "Hello world", true, undefined])
    expect(headers(ans.headers)).toEqual({ backend: "a", pool: "primary", phase: "direct", attempts: "1" })
    // Byte for byte, less the usage chunk the client did not ask for.
    expect(ans.body).toBe([sse(chunk("Hello")), "data: {not json\n\n", sse(chunk(" world")), sse("[DONE]")].join(""))
    expect(ans.events[1]).toBe("{not json")
    expect([a.requests.length, b.requests.length]).toEqual([1, 0])

    await f.stillServes(a)
    const rows = await rowsOf(f, "backend", "outcome", "stream_end", "prompt_tokens", "completion_tokens", "cost_usd")
    expect(rows.map((r) => r.slice(0, 5))).toEqual([
      ["a", "success", "complete", 11, 2],
      ["a", "success", "complete", null, null]
    ])
    expect(rows[0]![5]).toBeCloseTo((11 * 1 + 2 * 2) / 1e6, 12)
  })

  it("no [DONE], clean close: the stream ends at upstream EOF, complete, no error event", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    a.reply({ kind: "sse", events: story, gapMs: 5, done: false })
    const f = await rig.sidecar(config(a, b, { a: { stream_idle_timeout_ms: 10_000 } }))

    const t0 = Date.now()
    const ans = await f.chat()
    // Promptly: well before the 10 s idle timeout could have ended it.
    expect(Date.now() - t0).toBeLessThan(3000)
    expect([ans.status, ans.text, ans.error]).toEqual([200, "Once upon a time", undefined])
    expect(ans.events.some((e) => typeof e === "object" && e !== null && "error" in e)).toBe(false)
    // Passed through as it came: no [DONE] made up, only the usage chunk the client did not ask for removed.
    expect(ans.done).toBe(false)
    expect(ans.body).toBe(story.slice(0, 3).join(""))
    expect(headers(ans.headers)).toEqual({ backend: "a", pool: "primary", phase: "direct", attempts: "1" })
    expect([a.requests.length, b.requests.length]).toEqual([1, 0])

    await f.stillServes(a)
    expect(await rowsOf(f, "backend", "outcome", "stream_end", "prompt_tokens", "completion_tokens")).toEqual([
      ["a", "success", "complete", 10, 3],
      ["a", "success", "complete", null, null]
    ])
  })

  it("a cut with no prefill_continuation backend: partial text, then the in-band stream_cut error, no [DONE]", async () => {
    const a = await rig.upstream()
    const b = await rig.upstream()
    a.reply({ kind: "sse", events: [sse(chunk("Hello")), sse(chunk(" wor")), sse(chunk("ld")), sse(usageChunk(5, 3))], gapMs: 5, cutAfter: 2, end: "cut" })
    const f = await rig.sidecar(config(a, b))
    const before = await f.metrics()

    const ans = await f.chat()
    expect([ans.status, ans.text, ans.done]).toEqual([200, "Hello wor", false])
    expect(ans.error).toMatchObject({ type: "upstream_stream_error", code: "stream_cut" })
    expect(typeof ans.error?.message).toBe("string")
    // The error event is the last thing the client received.
    expect(ans.events.at(-1)).toEqual({ error: ans.error })
    expect(ans.body.startsWith(sse(chunk("Hello")) + sse(chunk(" wor")))).toBe(true)
    expect(headers(ans.headers)).toEqual({ backend: "a", pool: "primary", phase: "direct", attempts: "1" })
    expect([a.requests.length, b.requests.length]).toEqual([1, 0])

    const after = await f.metrics()
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0)
    expect(delta(`sidecar_stream_continuations_total{outcome="no_backend"}`)).toBe(1)
    expect(delta(`sidecar_stream_breaks_total{backend="a",kind="cut"}`)).toBe(1)

    // The official client does not take it for a clean end: iterating the stream throws the error.
    a.reply({ kind: "sse", events: [sse(chunk("Hello")), sse(chunk(" wor")), sse(chunk("ld"))], gapMs: 5, cutAfter: 2, end: "cut" })
    const client = new OpenAI({ baseURL: `${f.url}/v1`, apiKey: "client-key", maxRetries: 0 })
    const stream = await client.chat.completions.create({ model: "m1", messages: [{ role: "user", content: "hi" }], stream: true })
    let text = ""
    const consume = async () => {
      for await (const c of stream) text += c.choices[0]?.delta.content ?? ""
    }
    await expect(consume()).rejects.toThrow(/closed the stream before it was complete/)
    expect(text).toBe("Hello wor")

    await f.stillServes(a)
    expect(await rowsOf(f, "backend", "outcome", "stream_end")).toEqual([
      ["a", "success", "cut"],
      ["a", "success", "cut"],
      ["a", "success", "complete"]
    ])
  })
})
