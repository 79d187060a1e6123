/**
 * Everything that can go wrong before the commit point, as the lifecycle observes it: timeouts by
 * stage, refused and reset connections, error statuses with their bodies, and interruption.
 */
import { createServer } from "node:net"
import type { AddressInfo } from "node:net"
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest"
import type { Dispatcher } from "undici"
import { UpstreamAttempt } from "../../../src/adapters/upstream/UpstreamAttempt.js"
import { Observation } from "../../../src/domain/FailureClass.js"
import type { AttemptReply } from "../../../src/domain/ports/Upstream.js"
import { chunk, MockUpstream, sse } from "../../fakes/MockUpstream.js"
import { backend, fork, httpResponse, interrupt, makeRuntime, readAll, request, send, sleep } from "./harness.js"

const rt = makeRuntime()
let mock: MockUpstream

beforeEach(async () => {
  mock = await MockUpstream.start()
})
afterEach(() => mock.close())
afterAll(() => rt.dispose())

const streamed = () => request({ body: { model: "m", stream: true } })

/** A port nothing listens on. */
const closedPort = async (): Promise<number> => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

describe("UndiciUpstream before the commit point", { timeout: 10_000 }, () => {
  it("connection refused → ConnectionFailed(refused)", async () => {
    const reply = await send(rt, backend(await closedPort()), request())
    expect(reply.observation).toEqual(Observation.ConnectionFailed({ reason: "refused" }))
    expect(reply.response).toBeUndefined()
  })

  it("no socket within timeout_ms → TimedOut(connect); a socket assigned later is aborted on arrival", async () => {
    const replies: Array<AttemptReply> = []
    const attempt = new UpstreamAttempt(backend(1, { timeout_ms: 50 }), false, false, false, undefined, (r) => replies.push(r))
    await sleep(120)
    expect(replies.map((r) => r.observation)).toEqual([Observation.TimedOut({ stage: "connect" })])
    let aborted = false
    attempt.onRequestStart({ abort: () => (aborted = true) } as unknown as Dispatcher.DispatchController)
    expect(aborted).toBe(true)
    expect(replies).toHaveLength(1)
  })

  it("reset before headers → ConnectionFailed(reset)", async () => {
    mock.reply({ kind: "reset" })
    const reply = await send(rt, backend(mock.port), request())
    expect(reply.observation).toEqual(Observation.ConnectionFailed({ reason: "reset" }))
  })

  it("no headers within timeout_ms → TimedOut(headers), and the upstream socket is closed", async () => {
    mock.reply({ kind: "silence" })
    const started = Date.now()
    const closed = mock.nextSocketClose(2000)
    const reply = await send(rt, backend(mock.port, { timeout_ms: 300 }), request())
    const took = Date.now() - started
    expect(reply.observation).toEqual(Observation.TimedOut({ stage: "headers" }))
    expect(took).toBeGreaterThanOrEqual(280)
    expect(took).toBeLessThan(1000)
    await closed
  })

  it("no first data event within first_token_timeout_ms (from the attempt's start) → TimedOut(first_token)", async () => {
    mock.reply({ kind: "headersThenSilence" })
    const started = Date.now()
    const closed = mock.nextSocketClose(2000)
    const reply = await send(rt, backend(mock.port, { first_token_timeout_ms: 300 }), streamed())
    const took = Date.now() - started
    expect(reply.observation).toEqual(Observation.TimedOut({ stage: "first_token" }))
    expect(reply.firstByteMs).toBeLessThan(200)
    expect(took).toBeGreaterThanOrEqual(280)
    expect(took).toBeLessThan(1000)
    await closed
  })

  it("comments do not count as the first token", async () => {
    mock.reply({ kind: "sse", events: [": processing\n\n", ": processing\n\n", sse(chunk("late"))], gapMs: 200 })
    const reply = await send(rt, backend(mock.port, { first_token_timeout_ms: 300 }), streamed())
    expect(reply.observation).toEqual(Observation.TimedOut({ stage: "first_token" }))
  })

  it("an event stream that ends before any data event → ConnectionFailed(reset)", async () => {
    mock.reply({ kind: "sse", events: [": hello\n\n"], done: false })
    const reply = await send(rt, backend(mock.port), streamed())
    expect(reply.observation).toEqual(Observation.ConnectionFailed({ reason: "reset" }))
  })

  it("429 with rate-limit headers: observed with lower-case headers, body replayable", async () => {
    const body = `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`
    mock.reply({
      kind: "raw", status: 429, body,
      headers: { "Content-Type": "application/json", "Retry-After": "7", "retry-after-ms": "6500", "X-RateLimit-Reset-Requests": "1m30s" }
    })
    const reply = await send(rt, backend(mock.port), request({ body: { model: "m" } }))
    expect(reply.observation._tag).toBe("Response")
    if (reply.observation._tag !== "Response") return
    expect(reply.observation.status).toBe(429)
    expect(reply.observation.errorCode).toBe("rate_limit_exceeded")
    expect(reply.observation.headers).toMatchObject({
      "retry-after": "7", "retry-after-ms": "6500", "x-ratelimit-reset-requests": "1m30s"
    })
    const res = httpResponse(reply)
    expect(res.status).toBe(429)
    expect((await readAll(res)).text).toBe(body)
    expect(await res.finished).toEqual({ promptTokens: undefined, completionTokens: undefined, end: "complete" })
  })

  it("400 context_length_exceeded: code and message parsed, the body passes through unchanged", async () => {
    const body = `{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`
    mock.reply({ kind: "raw", status: 400, body, headers: { "content-type": "application/json" } })
    const reply = await send(rt, backend(mock.port), request({ body: { model: "m" } }))
    expect(reply.observation).toEqual(Observation.Response({
      status: 400,
      headers: expect.anything(),
      errorCode: "context_length_exceeded",
      errorMessage: "This model's maximum context length is 8192 tokens"
    }))
    expect((await readAll(httpResponse(reply))).text).toBe(body)
  })

  it("an oversized error body is capped", async () => {
    mock.reply({ kind: "raw", status: 502, body: "x".repeat(200_000), headers: { "content-type": "text/html" } })
    const reply = await send(rt, backend(mock.port), request())
    expect(reply.observation).toMatchObject({ _tag: "Response", status: 502 })
    expect((await readAll(httpResponse(reply))).text).toHaveLength(64 * 1024)
  })

  it("interrupting send before headers aborts the upstream request at once", async () => {
    mock.reply({ kind: "silence" })
    const fiber = fork(rt, backend(mock.port, { timeout_ms: 5000 }), request({ body: { model: "m" } }))
    while (mock.requests.length === 0) await sleep(5)
    const closed = mock.nextSocketClose(1000)
    const interruptedAt = Date.now()
    await interrupt(rt, fiber)
    // The canceler destroys the socket synchronously; the slack is for a loaded test machine
    // (the upstream would otherwise hold the request for timeout_ms = 5 s).
    expect((await closed) - interruptedAt).toBeLessThan(500)
  })

  it("interrupting send while waiting for the first token aborts the upstream request", async () => {
    mock.reply({ kind: "headersThenSilence" })
    const fiber = fork(rt, backend(mock.port, { first_token_timeout_ms: 5000 }), streamed())
    while (mock.requests.length === 0) await sleep(5)
    await sleep(50)
    const closed = mock.nextSocketClose(1000)
    const interruptedAt = Date.now()
    await interrupt(rt, fiber)
    expect((await closed) - interruptedAt).toBeLessThan(500)
  })

  it("never puts the API key in an observation or a reply", async () => {
    mock.reply({ kind: "raw", status: 401, body: `{"error":{"message":"bad key"}}` })
    const replies = [
      await send(rt, backend(mock.port), request()),
      await send(rt, backend(await closedPort()), request())
    ]
    for (const r of replies) expect(JSON.stringify(r.observation)).not.toContain("sk-test-1234")
  })
})
