/**
 * The streaming data plane against a real mock server: commit at the first data event, bytes
 * unbuffered, the usage chunk, and every way a committed stream can end.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest"
import { chunk, MockUpstream, sse, usageChunk } from "../../fakes/MockUpstream.js"
import { backend, dataEvents, httpResponse, makeRuntime, readAll, request, send, sleep } from "./harness.js"

const rt = makeRuntime()
let mock: MockUpstream

beforeEach(async () => {
  mock = await MockUpstream.start()
})
afterEach(() => mock.close())
afterAll(() => rt.dispose())

const streamed = (extra: Record<string, unknown> = {}) => request({ body: { model: "m", stream: true, ...extra } })

describe("UndiciUpstream streaming", { timeout: 10_000 }, () => {
  it("commits at the first data event and streams the rest unbuffered, gaps intact", async () => {
    mock.reply({ kind: "sse", events: [": keep-alive\n\n", ...["a", "b", "c", "d"].map((c) => sse(chunk(c)))], gapMs: 200 })
    const started = Date.now()
    const reply = await send(rt, backend(mock.port), streamed())
    const committedAt = Date.now() - started
    expect(reply.observation).toMatchObject({ _tag: "Response", status: 200 })
    expect(reply.firstByteMs).toBeLessThan(150)
    // The comment came at ~0 ms, the first data event at ~200 ms: commit waits for the data event.
    expect(committedAt).toBeGreaterThanOrEqual(170)
    const res = httpResponse(reply)
    expect(res.headers["content-type"]).toBe("text/event-stream")
    const got = await readAll(res, started)
    expect(dataEvents(got.text)).toHaveLength(5)
    const at = (needle: string) => got.chunks.find((c) => c.text.includes(needle))?.at ?? -1
    expect(at(`"content":"b"`)).toBeGreaterThanOrEqual(370)
    expect(at(`"content":"c"`) - at(`"content":"b"`)).toBeGreaterThanOrEqual(140)
    expect(at(`"content":"d"`) - at(`"content":"c"`)).toBeGreaterThanOrEqual(140)
    expect((await res.finished).end).toBe("complete")
  })

  it("removes the usage chunk it asked for, and reports its tokens", async () => {
    mock.reply({ kind: "sse", events: [sse(chunk("hi", { usage: null })), sse(usageChunk(9, 4))] })
    const res = httpResponse(await send(rt, backend(mock.port), streamed()))
    const got = await readAll(res)
    expect(got.text).toBe(sse(chunk("hi", { usage: null })) + sse("[DONE]"))
    expect(await res.finished).toEqual({ promptTokens: 9, completionTokens: 4, end: "complete" })
  })

  it("keeps the usage chunk when the client asked for it", async () => {
    mock.reply({ kind: "sse", events: [sse(chunk("hi")), sse(usageChunk(9, 4))] })
    const res = httpResponse(await send(rt, backend(mock.port), streamed({ stream_options: { include_usage: true } })))
    const got = await readAll(res)
    expect(got.text).toBe(sse(chunk("hi")) + sse(usageChunk(9, 4)) + sse("[DONE]"))
    expect(await res.finished).toEqual({ promptTokens: 9, completionTokens: 4, end: "complete" })
  })

  it("ends promptly at upstream EOF without [DONE], as complete", async () => {
    mock.reply({ kind: "sse", events: [sse(chunk("a")), sse(chunk("b"))], done: false, gapMs: 20 })
    const res = httpResponse(await send(rt, backend(mock.port), streamed()))
    const started = Date.now()
    const got = await readAll(res)
    expect(Date.now() - started).toBeLessThan(500)
    expect(dataEvents(got.text)).toHaveLength(2)
    expect((await res.finished).end).toBe("complete")
  })

  it("passes malformed events through and keeps counting", async () => {
    const events = [sse(chunk("a")), "data: {not json\n\n", "event: x\ndata\n\n", sse(usageChunk(1, 2))]
    mock.reply({ kind: "sse", events })
    const res = httpResponse(await send(rt, backend(mock.port), streamed({ stream_options: { include_usage: true } })))
    const got = await readAll(res)
    expect(got.text).toBe(events.join("") + sse("[DONE]"))
    expect(await res.finished).toEqual({ promptTokens: 1, completionTokens: 2, end: "complete" })
  })

  it("a stream cut after k events ends with an in-band error event", async () => {
    mock.reply({ kind: "sse", events: [sse(chunk("a")), sse(chunk("b")), sse(chunk("c"))], cutAfter: 2, gapMs: 10 })
    const res = httpResponse(await send(rt, backend(mock.port), streamed()))
    const events = dataEvents((await readAll(res)).text)
    expect(events).toHaveLength(3)
    expect(JSON.parse(events[2] ?? "")).toEqual({
      error: { message: expect.any(String), type: "upstream_stream_error", code: "stream_cut" }
    })
    expect(await res.finished).toMatchObject({ end: "cut" })
  })

  it("a reset stream ends with a stream_reset error event", async () => {
    mock.reply({ kind: "sse", events: [sse(chunk("a"))], cutAfter: 1, end: "reset", gapMs: 10 })
    const res = httpResponse(await send(rt, backend(mock.port), streamed()))
    const events = dataEvents((await readAll(res)).text)
    expect(JSON.parse(events.at(-1) ?? "").error.code).toBe("stream_reset")
    expect((await res.finished).end).toBe("reset")
  })

  it("a stream idle past stream_idle_timeout_ms gets a stream_stalled event and the upstream is closed", async () => {
    mock.reply({ kind: "sse", events: [sse(chunk("a"))], cutAfter: 1, end: "hang" })
    const b = backend(mock.port, { stream_idle_timeout_ms: 300 })
    const res = httpResponse(await send(rt, b, streamed()))
    const closed = mock.nextSocketClose(3000)
    const started = Date.now()
    const events = dataEvents((await readAll(res)).text)
    const waited = Date.now() - started
    expect(waited).toBeGreaterThanOrEqual(250)
    expect(waited).toBeLessThan(1500)
    expect(JSON.parse(events.at(-1) ?? "").error.code).toBe("stream_stalled")
    expect((await res.finished).end).toBe("stall")
    await closed
  })

  it("a slow consumer is not a stalled upstream", async () => {
    const big = "x".repeat(40_000)
    mock.reply({ kind: "sse", events: Array.from({ length: 8 }, () => sse(chunk(big))) })
    const b = backend(mock.port, { stream_idle_timeout_ms: 200 })
    const res = httpResponse(await send(rt, b, streamed()))
    const reading = readAll(res)
    res.body.pause() // the consumer stops reading: the upstream is paused by backpressure, not silent
    await sleep(600)
    res.body.resume()
    const got = await reading
    expect(dataEvents(got.text)).toHaveLength(9)
    expect((await res.finished).end).toBe("complete")
  })

  it("a committed body nobody ever reads is abandoned after the idle period, closing the upstream", async () => {
    const big = "x".repeat(40_000)
    mock.reply({ kind: "sse", events: Array.from({ length: 8 }, () => sse(chunk(big))), end: "hang" })
    const b = backend(mock.port, { stream_idle_timeout_ms: 200 })
    const res = httpResponse(await send(rt, b, streamed()))
    await mock.nextSocketClose(2000)
    expect((await res.finished).end).toBe("client_closed")
  })

  it("destroying the body after commit closes the upstream socket at once", async () => {
    mock.reply({ kind: "sse", events: Array.from({ length: 50 }, (_, i) => sse(chunk(String(i)))), gapMs: 50 })
    const res = httpResponse(await send(rt, backend(mock.port), streamed()))
    res.body.resume()
    await new Promise((resolve) => setTimeout(resolve, 120))
    const closed = mock.nextSocketClose(1000)
    const destroyedAt = Date.now()
    res.body.destroy()
    expect((await closed) - destroyedAt).toBeLessThan(500) // vs. 50 more events at 50 ms
    expect((await res.finished).end).toBe("client_closed")
  })

  it("extracts usage from an event-stream of the Responses API", async () => {
    const done = { type: "response.completed", response: { id: "r", usage: { input_tokens: 5, output_tokens: 6 } } }
    mock.reply({ kind: "sse", events: [sse({ type: "response.created" }), sse(done)], done: false })
    const res = httpResponse(await send(rt, backend(mock.port), request({ path: "/v1/responses", body: { model: "m", stream: true } })))
    await readAll(res)
    expect(await res.finished).toEqual({ promptTokens: 5, completionTokens: 6, end: "complete" })
  })
})
