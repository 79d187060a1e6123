/**
 * Mock OpenAI upstream (own process): `POST …/chat/completions` answers a ~350-byte chat.completion,
 * or with `"stream": true` an SSE stream of `bench_events` events `bench_gap_ms` apart (0 = back-to-back).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { type ChildMessage, exitWithParent, MODEL, nowNs } from "./protocol.js"

exitWithParent()

const COMPLETION = Buffer.from(JSON.stringify({
  id: "chatcmpl-bench0000000000000000000001",
  object: "chat.completion",
  created: 1_700_000_000,
  model: MODEL,
  system_fingerprint: "fp_bench00",
  choices: [{
    index: 0,
    message: { role: "assistant", content: "Hello! It is a pleasure to meet you today." },
    logprobs: null,
    finish_reason: "stop"
  }],
  usage: { prompt_tokens: 14, completion_tokens: 11, total_tokens: 25 }
}))
const JSON_HEADERS = { "content-type": "application/json", "content-length": String(COMPLETION.length) }
const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" }

const CHUNK_HEAD = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"${MODEL}","choices":[{"index":0,"delta":{"content":"`
/** Event `i` of `n`: content chunks (the last one with finish_reason), then usage, then [DONE]. */
const event = (i: number, n: number): string => {
  const bt = Number(nowNs() / 1000n) // send time, µs on the machine's monotonic clock
  if (i === n - 1) return "data: [DONE]\n\n"
  if (i === n - 2) {
    return `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"${MODEL}","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":${n - 2},"total_tokens":${n + 12}},"bt":${bt}}\n\n`
  }
  const finish = i === n - 3 ? "\"stop\"" : "null"
  return `${CHUNK_HEAD} token${i}"},"finish_reason":${finish}}],"bt":${bt}}\n\n`
}

const stream = (res: ServerResponse, events: number, gapMs: number) => {
  res.writeHead(200, SSE_HEADERS)
  const n = Math.max(3, events)
  if (gapMs <= 0) {
    for (let i = 0; i < n; i++) res.write(event(i, n))
    res.end()
    return
  }
  let i = 0
  let timer: NodeJS.Timeout | undefined
  const next = () => {
    if (res.destroyed) return
    res.write(event(i, n))
    i++
    if (i < n) timer = setTimeout(next, gapMs)
    else res.end()
  }
  res.on("close", () => clearTimeout(timer))
  next()
}

const num = (v: unknown, fallback: number) => (typeof v === "number" && Number.isFinite(v) ? v : fallback)

const respond = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
  if (req.method !== "POST" || !(req.url ?? "").includes("/chat/completions")) {
    res.writeHead(404, { "content-type": "application/json" })
    res.end("{\"error\":{\"message\":\"not found\"}}")
    return
  }
  // Only a streamed request is parsed: the non-streamed path stays as cheap as possible.
  if (body.includes("\"stream\":true")) {
    let parsed: Record<string, unknown> = {}
    try {
      parsed = JSON.parse(body.toString("utf8")) as Record<string, unknown>
    } catch { /* defaults */ }
    return stream(res, num(parsed["bench_events"], 24), num(parsed["bench_gap_ms"], 0))
  }
  res.writeHead(200, JSON_HEADERS)
  res.end(COMPLETION)
}

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const chunks: Array<Buffer> = []
  req.on("error", () => {}) // a client that leaves mid-request is not the mock's problem
  req.on("data", (c: Buffer) => chunks.push(c))
  req.on("end", () => respond(req, res, chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks)))
})
server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => {
  const message: ChildMessage = { type: "ready", port: (server.address() as AddressInfo).port }
  process.send?.(message)
})
