/**
 * The client-facing body of an upstream response: a Node `Readable` fed by the attempt, with
 * backpressure back to the upstream socket and a `finished` report that settles exactly once.
 */
import { Readable } from "node:stream"
import type { StreamBreakKind } from "../../domain/Attempt.js"
import type { AnswerTracker } from "./AnswerTracker.js"
import type { BodyReport } from "./HttpExchange.js"

/** What feeds a body: the attempt that owns the upstream request. */
export interface BodySource {
  /** The consumer wants more: resume reading the upstream socket if it was paused. */
  readonly resumeUpstream: () => void
  /** The consumer destroyed the body before the upstream finished: abort the upstream request. */
  readonly bodyClosed: () => void
}

type End = BodyReport["end"]

/** A committed event stream broke: what the broken attempt delivered, and the error event it ends on. */
export interface BodyBreak {
  readonly kind: StreamBreakKind
  /** Tokens the broken attempt's upstream reported (usually none: the usage chunk comes last). */
  readonly promptTokens: number | undefined
  readonly completionTokens: number | undefined
  /** The in-band SSE error event for this break, sent if nothing continues the stream. */
  readonly errorEvent: Buffer
}

const idle: BodySource = { resumeUpstream: () => {}, bodyClosed: () => {} }

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
  /** The answer so far, kept when a break of this (chat completion) stream could be continued. */
  answer: AnswerTracker | undefined = undefined
  /**
   * Set by whoever delivers the body: called, instead of ending it, when its event stream breaks;
   * it must then `continueFrom` another attempt or `giveUp`.
   */
  onBreak: ((brk: BodyBreak) => void) | undefined = undefined
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

  /** The current attempt's stream broke: hands it to `onBreak`; false when there is none to take it. */
  broke(brk: BodyBreak): boolean {
    const handler = this.onBreak
    if (handler === undefined || this.destroyed) return false
    // Until a continuation takes over, nothing feeds the body; `cancel` runs if the client leaves.
    this.source = idle
    handler(brk)
    return true
  }

  /** While a continuation is sought: the client leaving calls `cancel` (which stops the search). */
  awaitContinuation(cancel: () => void): void {
    if (this.destroyed) return cancel()
    this.source = { resumeUpstream: () => {}, bodyClosed: cancel }
  }

  /** A continuation attempt committed: from now on it feeds this body. */
  continueFrom(source: BodySource): void {
    if (this.destroyed) return source.bodyClosed()
    this.source = source
  }

  /** Nothing continues the broken stream: end it with the original break's error event. */
  giveUp(brk: BodyBreak): void {
    this.finish(brk.kind, brk.errorEvent)
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
