/**
 * Test harness for the undici upstream: backends and requests in the HTTP adapter's shapes, a
 * runtime holding the real layer, and a body reader that timestamps what the client receives.
 */
import { Effect, Fiber, ManagedRuntime, Schema } from "effect"
import { Backend, type BackendInput } from "../../../src/domain/Backend.js"
import type { AttemptReply } from "../../../src/domain/ports/Upstream.js"
import { Upstream } from "../../../src/domain/ports/Upstream.js"
import type { HeaderMap, HttpProxyRequest, HttpUpstreamResponse } from "../../../src/adapters/upstream/HttpExchange.js"
import * as UndiciUpstream from "../../../src/adapters/upstream/UndiciUpstream.js"

export const backend = (port: number, fields: Partial<BackendInput> = {}): Backend =>
  Schema.decodeUnknownSync(Backend)({
    id: "b1",
    pool: "primary",
    base_url: `http://127.0.0.1:${port}/v1`,
    api_key: "sk-test-1234",
    timeout_ms: 2000,
    ...fields
  })

export interface RequestInit {
  readonly method?: string
  readonly path?: string
  readonly headers?: HeaderMap
  /** A JSON body (object) or raw text. */
  readonly body?: Record<string, unknown> | string
}

export const request = (init: RequestInit = {}): HttpProxyRequest => {
  const body = init.body
  const json = typeof body === "object" ? body : undefined
  const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(typeof body === "string" ? body : JSON.stringify(body))
  return {
    id: "req-1",
    model: typeof json?.["model"] === "string" ? json["model"] : "unknown",
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    path: init.path ?? "/v1/chat/completions",
    headers: { "content-type": "application/json", ...init.headers },
    body: bytes,
    json,
    stream: json?.["stream"] === true
  }
}

export const makeRuntime = () => ManagedRuntime.make(UndiciUpstream.layer)
export type Runtime = ReturnType<typeof makeRuntime>

const sendEffect = (b: Backend, req: HttpProxyRequest, upstreamModel?: string) =>
  Effect.flatMap(Upstream, (u) =>
    u.send({
      request: req,
      backend: b,
      ticket: { backend: b, sentAt: Date.now(), generation: 0 },
      upstreamModel: upstreamModel ?? req.model,
      phase: "direct",
      attempt: 1,
      trackAnswer: false
    }))

export const send = (rt: Runtime, b: Backend, req: HttpProxyRequest, upstreamModel?: string): Promise<AttemptReply> =>
  rt.runPromise(sendEffect(b, req, upstreamModel))

/** Starts a send in a fiber, to interrupt it. */
export const fork = (rt: Runtime, b: Backend, req: HttpProxyRequest) => rt.runFork(sendEffect(b, req))
export const interrupt = (rt: Runtime, fiber: Fiber.RuntimeFiber<AttemptReply>) => rt.runPromise(Fiber.interrupt(fiber))

export const httpResponse = (reply: AttemptReply): HttpUpstreamResponse => {
  if (reply.response === undefined) throw new Error(`no response: ${JSON.stringify(reply.observation)}`)
  return reply.response as HttpUpstreamResponse
}

export interface Received {
  readonly text: string
  /** Each chunk as the client got it, with ms since `since`. */
  readonly chunks: ReadonlyArray<{ readonly at: number; readonly text: string }>
}

/** Reads a body to its end (or its destruction), recording when each chunk arrived. */
export const readAll = (response: HttpUpstreamResponse, since = Date.now()): Promise<Received> =>
  new Promise((resolve) => {
    const chunks: Array<{ at: number; text: string }> = []
    const done = () => resolve({ text: chunks.map((c) => c.text).join(""), chunks })
    response.body.on("data", (c: Buffer) => chunks.push({ at: Date.now() - since, text: c.toString("utf8") }))
    response.body.on("end", done)
    response.body.on("error", done)
    response.body.on("close", done)
  })

/** The data payloads of the SSE events in `text`. */
export const dataEvents = (text: string): Array<string> =>
  text.split(/\n\n/).filter((e) => e.startsWith("data:")).map((e) => e.slice(5).trim())

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
