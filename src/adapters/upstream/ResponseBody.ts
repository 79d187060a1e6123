/**
 * The client-facing body of an upstream response: a Node `Readable` fed by the attempt, with
 * backpressure back to the upstream socket and a `finished` report that settles exactly once.
 */
import { Readable } from "node:stream"
import type { BodyReport } from "./HttpExchange.js"

/** What feeds a body: the attempt that owns the upstream request. */
export interface BodySource {
  /** The consumer wants more: resume reading the upstream socket if it was paused. */
  readonly resumeUpstream: () => void
  /** The consumer destroyed the body before the upstream finished: abort the upstream request. */
  readonly bodyClosed: () => void
}

type End = BodyReport["end"]

const HIGH_WATER_MARK = 64 * 1024
const noop = () => {}

/**
 * Invariants: `finished` settles exactly once, when the stream is destroyed (which autoDestroy
 * does right after `end`) and never rejects; its `end` is how the upstream side ended when the
 * consumer read everything or the upstream broke, else `client_closed`. Destroying the body
 * before the upstream finished tells the source, which aborts the upstream request.
 */
export class ResponseBody extends Readable {
  readonly finished: Promise<BodyReport>
  promptTokens: number | undefined = undefined
  completionTokens: number | undefined = undefined
  private settle: ((report: BodyReport) => void) | undefined
  /** How the upstream side ended; undefined while it is still sending. */
  private upstreamEnd: End | undefined = undefined

  constructor(private source: BodySource | undefined) {
    super({ highWaterMark: HIGH_WATER_MARK })
    this.finished = new Promise<BodyReport>((resolve) => {
      this.settle = resolve
    })
  }

  /** A body that replays bytes already read (an error response's small body). */
  static replay(bytes: Buffer): ResponseBody {
    const body = new ResponseBody(undefined)
    if (bytes.length > 0) body.push(bytes)
    body.finish("complete", undefined)
    return body
  }

  override _read(): void {
    this.source?.resumeUpstream()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const source = this.source
    this.source = undefined
    const upstream = this.upstreamEnd
    if (upstream === undefined) source?.bodyClosed()
    const end: End = this.readableEnded
      ? upstream ?? "complete"
      : upstream !== undefined && upstream !== "complete"
      ? upstream
      : "client_closed"
    const settle = this.settle
    this.settle = undefined
    settle?.({ promptTokens: this.promptTokens, completionTokens: this.completionTokens, end })
    callback(error)
  }

  /** The upstream side ended (completely, or broken with `tail` as the in-band error): end the body. */
  finish(end: End, tail: Buffer | undefined): void {
    this.upstreamEnd = end
    this.source = undefined
    if (this.destroyed) return
    if (tail !== undefined && tail.length > 0) this.push(tail)
    this.push(null)
  }

  /** The upstream broke a body that cannot carry an in-band error: destroy it with `error`. */
  fail(end: End, error: Error): void {
    this.upstreamEnd = end
    this.source = undefined
    if (this.destroyed) return
    // A consumer that never attached an error listener must not take the process down.
    if (this.listenerCount("error") === 0) this.on("error", noop)
    this.destroy(error)
  }
}
