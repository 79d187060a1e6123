/**
 * A scripted OpenAI-compatible upstream on 127.0.0.1 (node:http, port 0) for adapter tests: each
 * request takes the next scripted reply; everything received and every connection is recorded.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"

export type MockReply =
  /** A JSON answer. */
  | { readonly kind: "json"; readonly status?: number; readonly headers?: Record<string, string>; readonly body: unknown; readonly delayMs?: number }
  /** Raw bytes with a status (error bodies, odd content types). */
  | { readonly kind: "raw"; readonly status: number; readonly headers?: Record<string, string>; readonly body: string; readonly delayMs?: number }
  /**
   * An event stream: `events` are written as given (use `sse()`), `gapMs` apart after `firstDelayMs`.
   * Then `end`: "close" (clean end; `[DONE]` first unless `done: false`), "cut" (socket destroyed),
   * "reset" (TCP RST), "hang" (nothing more). `cutAfter` ends the stream that way after k events.
   */
  | {
    readonly kind: "sse"
    readonly events: ReadonlyArray<string>
    readonly gapMs?: number
    readonly firstDelayMs?: number
    readonly headers?: Record<string, string>
    readonly done?: boolean
    readonly end?: "close" | "cut" | "reset" | "hang"
    readonly cutAfter?: number
  }
  /** The connection is reset before any response. */
  | { readonly kind: "reset" }
  /** The request is accepted and never answered. */
  | { readonly kind: "silence" }
  /** Headers are sent, then nothing. */
  | { readonly kind: "headersThenSilence"; readonly headers?: Record<string, string> }

export interface RecordedRequest {
  /** Epoch ms at which the request's body had arrived. */
  readonly at: number
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** One SSE event carrying `data` (JSON-encoded unless a string). */
export const sse = (data: unknown): string => `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`

/** An OpenAI chat-completion chunk with `content`. */
export const chunk = (content: string, extra: Record<string, unknown> = {}) => ({
  id: "c1",
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
  ...extra
})

/** The usage-only final chunk (`stream_options.include_usage`). */
export const usageChunk = (prompt: number, completion: number) => ({
  id: "c1",
  object: "chat.completion.chunk",
  choices: [],
  usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
})

export class MockUpstream {
  readonly requests: Array<RecordedRequest> = []
  connections = 0
  readonly socketCloses: Array<number> = []
  private readonly script: Array<MockReply> = []
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly sockets = new Set<Socket>()
  private closeWaiters: Array<() => void> = []

  private constructor(private readonly server: Server, readonly port: number, private fallback: MockReply) {}

  static async start(fallback: MockReply = { kind: "json", body: { ok: true } }): Promise<MockUpstream> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const mock = new MockUpstream(server, (server.address() as AddressInfo).port, fallback)
    server.on("connection", (socket) => mock.onConnection(socket))
    server.on("request", (req, res) => mock.onRequest(req, res))
    return mock
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Queues replies for the next requests, in order; then the fallback answers. */
  reply(...replies: Array<MockReply>): this {
    this.script.push(...replies)
    return this
  }

  setFallback(reply: MockReply): this {
    this.fallback = reply
    return this
  }

  /** Resolves at the next upstream socket close (or rejects after `timeoutMs`). */
  nextSocketClose(timeoutMs = 2000): Promise<number> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no upstream socket closed")), timeoutMs)
      this.closeWaiters.push(() => {
        clearTimeout(t)
        resolve(Date.now())
      })
    })
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    for (const s of this.sockets) s.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private onConnection(socket: Socket): void {
    this.connections++
    this.sockets.add(socket)
    socket.on("close", () => {
      this.sockets.delete(socket)
      this.socketCloses.push(Date.now())
      const waiters = this.closeWaiters
      this.closeWaiters = []
      for (const w of waiters) w()
    })
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t)
      f()
    }, ms)
    this.timers.add(t)
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const parts: Array<Buffer> = []
    req.on("data", (c: Buffer) => parts.push(c))
    req.on("end", () => {
      this.requests.push({
        at: Date.now(),
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(parts).toString("utf8")
      })
      this.answer(this.script.shift() ?? this.fallback, res)
    })
  }

  private answer(reply: MockReply, res: ServerResponse): void {
    switch (reply.kind) {
      case "json":
      case "raw": {
        const body = reply.kind === "json" ? JSON.stringify(reply.body) : reply.body
        const send = () => {
          res.writeHead(reply.kind === "json" ? reply.status ?? 200 : reply.status, {
            "content-type": reply.kind === "json" ? "application/json" : "text/plain",
            "content-length": Buffer.byteLength(body),
            ...reply.headers
          })
          res.end(body)
        }
        if (reply.delayMs === undefined) send()
        else this.later(reply.delayMs, send)
        return
      }
      case "reset":
        res.socket?.resetAndDestroy()
        return
      case "silence":
        return
      case "headersThenSilence":
        res.writeHead(200, { "content-type": "text/event-stream", ...reply.headers })
        res.flushHeaders()
        return
      case "sse":
        return this.stream(reply, res)
    }
  }

  private stream(reply: Extract<MockReply, { kind: "sse" }>, res: ServerResponse): void {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...reply.headers })
    res.flushHeaders()
    const events = reply.done === false ? [...reply.events] : [...reply.events, sse("[DONE]")]
    const limit = reply.cutAfter ?? events.length
    const finish = () => {
      switch (reply.cutAfter === undefined ? reply.end ?? "close" : reply.end ?? "cut") {
        case "close":
          return res.end()
        case "cut":
          return res.socket?.destroy()
        case "reset":
          return res.socket?.resetAndDestroy()
        case "hang":
          return
      }
    }
    const write = (i: number) => {
      if (res.destroyed) return
      if (i >= limit) return finish()
      res.write(events[i])
      this.later(reply.gapMs ?? 0, () => write(i + 1))
    }
    this.later(reply.firstDelayMs ?? 0, () => write(0))
  }
}
