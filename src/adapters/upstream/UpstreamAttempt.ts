/**
 * One attempt on the wire: the undici dispatch handler that owns the upstream request's timers,
 * finds its commit point, and then feeds the client-facing body (SPEC §1 step 3, §2).
 */
import type { Dispatcher } from "undici"
import type { Backend } from "../../domain/Backend.js"
import { Observation } from "../../domain/FailureClass.js"
import type { AttemptReply } from "../../domain/ports/Upstream.js"
import { parseErrorBody } from "./ErrorBody.js"
import { clientResponseHeaders, type ParsedHeaders } from "./ForwardHeaders.js"
import type { HttpUpstreamResponse } from "./HttpExchange.js"
import { AnswerTracker } from "./AnswerTracker.js"
import { BodyBytes } from "./BodyBytes.js"
import { ContinuationFilter } from "./ContinuationFilter.js"
import type { Continuing } from "./ContinuationRequest.js"
import { type BodyBreak, type BodySource, ResponseBody } from "./ResponseBody.js"
import { JSON_USAGE_CAP, responseKind } from "./ResponseKind.js"
import { SseTap } from "./SseTap.js"
import { openingError } from "./StreamOpeningError.js"
import { bodyBreakError, breakOf, observeFailure, streamErrorEvent, type StreamBreak } from "./TransportErrors.js"
import { usageFromJsonBody } from "./Usage.js"

/** Where the attempt is. Timers and callbacks act on the phase; DONE ignores everything late. */
const CONNECTING = 0 // dispatched, no socket yet: a timeout is a connect timeout
const WAITING = 1 // on a socket, waiting for the response headers
const ERROR_BODY = 2 // a non-2xx status: reading its small body for the classifier
const PRECOMMIT = 3 // a 2xx event stream: waiting for its first data event
const BODY = 4 // committed: feeding the client-facing body
const DONE = 5
type Phase = 0 | 1 | 2 | 3 | 4 | 5

/** An error body is read up to this many bytes; the rest is dropped and the connection closed. */
const ERROR_BODY_CAP = 64 * 1024

const abortError = () => Object.assign(new Error("upstream request aborted"), { code: "UND_ERR_ABORTED" })
const fire = (attempt: UpstreamAttempt) => attempt.onTimer()

/**
 * Invariants:
 * - `deliver` is called at most once, at the commit point or with the failure that came first;
 *   never after `cancel`.
 * - One timer at a time: `timeoutMs` from the start until the headers (connect / headers stage),
 *   then `firstTokenTimeoutMs` from the START of the attempt until the first data event of a
 *   stream, then `streamIdleTimeoutMs` between events (or chunks, for other bodies), not counting
 *   time paused by the consumer's backpressure.
 * - Any way the attempt ends early (timeout, cancel, consumer destroyed the body, stall) aborts
 *   the upstream request at once; before the socket is assigned the abort is applied on assignment.
 * - A continuation attempt (`into`) feeds the client's existing body, and only from its commit point
 *   on: before it, its bytes are held, and its failure leaves that body untouched. Anything but an
 *   event stream is not a continuation.
 * - A committed event stream that breaks is handed to its body's break handler when it has one
 *   (which may continue it); otherwise it ends with the in-band error event.
 */
export class UpstreamAttempt implements Dispatcher.DispatchHandler, BodySource {
  private phase: Phase = CONNECTING
  private readonly startedAt = Date.now()
  private controller: Dispatcher.DispatchController | undefined = undefined
  private abortWanted = false
  private timer: NodeJS.Timeout | undefined
  private lastActivity = 0
  private paused = false
  private status = 0
  private headers: Record<string, string | ReadonlyArray<string>> = {}
  private firstByteMs: number | undefined = undefined
  private body: ResponseBody | undefined = undefined
  private tap: SseTap | undefined = undefined
  /** An error status's body, or a JSON body kept for its usage (dropped if it outgrows the cap). */
  private kept: BodyBytes | undefined = undefined
  /** A continuation's bytes before its commit point. */
  private held: Array<Buffer> | undefined = undefined
  /** A continuation's filter: its own, so a failed try leaves nothing behind for the next. */
  private filter: ContinuationFilter | undefined = undefined

  constructor(
    private readonly backend: Backend,
    private readonly dropUsageChunk: boolean,
    private readonly head: boolean,
    /** Keep the answer's text (a break of this stream could be continued). */
    private readonly trackAnswer: boolean,
    private readonly into: Continuing | undefined,
    private deliver: ((reply: AttemptReply) => void) | undefined
  ) {
    this.timer = setTimeout(fire, backend.timeoutMs, this)
  }

  /** The fiber was interrupted (the client left) before it took the reply: abort everything. */
  cancel(): void {
    this.deliver = undefined
    if (this.phase === DONE) return
    this.end()
    if (this.into === undefined) this.body?.destroy()
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.abortWanted) controller.abort(abortError())
    else if (this.phase === CONNECTING) this.phase = WAITING
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: ParsedHeaders): void {
    if ((this.phase !== WAITING && this.phase !== CONNECTING) || statusCode < 200) return
    const now = Date.now()
    clearTimeout(this.timer)
    this.firstByteMs = now - this.startedAt
    this.status = statusCode
    this.headers = clientResponseHeaders(headers)
    if (statusCode >= 300) {
      this.phase = ERROR_BODY
      this.kept = new BodyBytes(ERROR_BODY_CAP)
      this.timer = setTimeout(fire, this.backend.timeoutMs, this)
      return
    }
    const kind = responseKind(statusCode, headers, this.head)
    const stream = kind === "stream"
    const into = this.into
    if (into !== undefined) {
      if (!stream) return this.failBeforeCommit(Observation.ConnectionFailed({ reason: "other" }))
      const filter = new ContinuationFilter(into.answer, into.trimmed)
      this.filter = filter
      this.body = into.body
      this.held = []
      this.tap = new SseTap(this.dropUsageChunk, (data) => filter.inspect(data))
    } else {
      this.body = new ResponseBody(this)
      if (stream) {
        const answer = this.trackAnswer ? new AnswerTracker() : undefined
        this.body.answer = answer
        this.tap = answer === undefined ? new SseTap(this.dropUsageChunk) : new SseTap(this.dropUsageChunk, (data) => {
          answer.observe(data)
          return true
        })
      }
    }
    if (stream) {
      this.phase = PRECOMMIT
      this.timer = setTimeout(fire, Math.max(0, this.backend.firstTokenTimeoutMs - this.firstByteMs), this)
      return
    }
    // One byte over the cap marks a body too large to parse.
    if (kind === "json") this.kept = new BodyBytes(JSON_USAGE_CAP + 1)
    this.commit(now)
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    switch (this.phase) {
      case BODY: {
        const tap = this.tap
        if (tap === undefined) {
          this.lastActivity = Date.now()
          if (this.kept?.add(chunk) === true) this.kept = undefined
          this.push(chunk)
        } else {
          const events = tap.events
          const out = tap.feed(chunk)
          if (tap.events !== events) this.lastActivity = Date.now()
          if (out !== undefined) this.push(out)
        }
        return
      }
      case PRECOMMIT: {
        const tap = this.tap as SseTap
        const out = tap.feed(chunk)
        if (out !== undefined) this.push(out)
        // A continuation whose first word is an error event has failed: the client never sees it.
        if (this.filter?.refused === true) return this.failBeforeCommit(Observation.ConnectionFailed({ reason: "other" }))
        // An in-band rate limit or overload instead of a first token: fail over, as for its status.
        const opened = tap.firstError === undefined ? undefined : openingError(tap.firstError)
        if (opened !== undefined) return this.failBeforeCommit(opened)
        if (tap.sawData) {
          clearTimeout(this.timer)
          this.commit(Date.now())
        }
        return
      }
      case ERROR_BODY:
        if (this.kept?.add(chunk) === true) this.endErrorBody(true)
        return
    }
  }

  onResponseEnd(): void {
    switch (this.phase) {
      case BODY:
        return this.endBody("complete")
      case PRECOMMIT:
        return this.failBeforeCommit(Observation.ConnectionFailed({ reason: "reset" }))
      case ERROR_BODY:
        return this.endErrorBody(false)
    }
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error): void {
    switch (this.phase) {
      case CONNECTING:
      case WAITING:
        return this.failBeforeCommit(observeFailure(err, this.phase === WAITING))
      case ERROR_BODY:
        return this.endErrorBody(false)
      case PRECOMMIT:
        return this.failBeforeCommit(Observation.ConnectionFailed({ reason: "reset" }))
      case BODY:
        return this.endBody(this.tap?.done === true ? "complete" : breakOf(err))
    }
  }

  /** The one timer fired: what it means depends on the phase. */
  onTimer(): void {
    switch (this.phase) {
      case CONNECTING:
      case WAITING:
        return this.failBeforeCommit(Observation.TimedOut({ stage: this.phase === WAITING ? "headers" : "connect" }))
      case ERROR_BODY:
        return this.endErrorBody(true)
      case PRECOMMIT:
        return this.failBeforeCommit(Observation.TimedOut({ stage: "first_token" }))
      case BODY:
        return this.checkIdle()
    }
  }

  resumeUpstream(): void {
    if (!this.paused) return
    this.paused = false
    this.lastActivity = Date.now()
    this.controller?.resume()
  }

  bodyClosed(): void {
    if (this.phase === BODY || this.phase === PRECOMMIT) this.end()
  }

  private commit(now: number): void {
    this.phase = BODY
    this.lastActivity = now
    this.timer = setTimeout(fire, this.backend.streamIdleTimeoutMs, this)
    const held = this.held
    if (held !== undefined) {
      this.held = undefined
      ;(this.body as ResponseBody).continueFrom(this)
      for (const bytes of held) this.push(bytes)
    }
    this.respond(Observation.Response({ status: this.status, headers: this.headers }), this.body as ResponseBody)
  }

  private respond(observation: Observation, body: ResponseBody): void {
    const response: HttpUpstreamResponse = { status: this.status, headers: this.headers, body, finished: body.finished }
    this.send({ observation, response, firstByteMs: this.firstByteMs })
  }

  private push(bytes: Buffer): void {
    if (this.held !== undefined) {
      this.held.push(bytes)
      return
    }
    if (!(this.body as ResponseBody).push(bytes) && !this.paused) {
      this.paused = true
      this.controller?.pause()
    }
  }

  private checkIdle(): void {
    const body = this.body as ResponseBody
    const idleMs = this.backend.streamIdleTimeoutMs
    const now = Date.now()
    if (this.paused) {
      // Backpressure is not silence, unless nobody ever started reading: then the reply was dropped.
      if (body.readableFlowing === null) {
        this.end()
        body.destroy()
        return
      }
      this.lastActivity = now
    }
    const quiet = now - this.lastActivity
    if (quiet < idleMs) {
      this.timer = setTimeout(fire, idleMs - quiet, this)
      return
    }
    this.end()
    this.endBody("stall")
  }

  /** The committed body ended upstream: completely, or broken. */
  private endBody(end: "complete" | StreamBreak): void {
    this.stop()
    const body = this.body as ResponseBody
    const tap = this.tap
    if (tap !== undefined) {
      body.promptTokens = tap.promptTokens
      body.completionTokens = tap.completionTokens
    } else if (end === "complete" && this.kept !== undefined) {
      const usage = usageFromJsonBody(this.kept.bytes())
      body.promptTokens = usage?.promptTokens
      body.completionTokens = usage?.completionTokens
    }
    this.kept = undefined
    if (end === "complete") body.finish("complete", tap?.flush())
    else if (tap !== undefined) {
      tap.discard()
      const brk: BodyBreak = {
        kind: end,
        promptTokens: tap.promptTokens,
        completionTokens: tap.completionTokens,
        errorEvent: streamErrorEvent(end, this.backend.streamIdleTimeoutMs)
      }
      body.answer?.closeSegment(brk.promptTokens, brk.completionTokens)
      if (!body.broke(brk)) body.giveUp(brk)
    } else body.fail(end, bodyBreakError(end))
  }

  /** An error status's body is read (or capped, or timed out): deliver it for classification and replay. */
  private endErrorBody(truncated: boolean): void {
    if (truncated) this.end()
    else this.stop()
    const bytes = this.kept?.bytes() ?? Buffer.alloc(0)
    this.kept = undefined
    const { code, message } = parseErrorBody(bytes)
    const observation = Observation.Response({ status: this.status, headers: this.headers, errorCode: code, errorMessage: message })
    this.respond(observation, ResponseBody.replay(bytes))
  }

  private failBeforeCommit(observation: Observation): void {
    this.end()
    this.held = undefined
    if (this.into === undefined) this.body?.destroy()
    this.send(this.firstByteMs === undefined ? { observation } : { observation, firstByteMs: this.firstByteMs })
  }

  /** Stops the attempt: no more timers, the upstream request aborted (now, or once it has a socket). */
  private end(): void {
    this.stop()
    if (this.controller !== undefined) this.controller.abort(abortError())
    else this.abortWanted = true
  }

  /** No more timers, nothing more to do; late callbacks are ignored. */
  private stop(): void {
    this.phase = DONE
    clearTimeout(this.timer)
  }

  private send(reply: AttemptReply): void {
    const deliver = this.deliver
    this.deliver = undefined
    deliver?.(reply)
  }
}
