/**
 * What a transport error means: before a response, an `Observation` for the classifier; after the
 * commit point, how the body broke, and the in-band SSE error event the client receives for it.
 * No error text from the network stack is passed on (it may name hosts; it never names keys).
 */
import type { StreamBreakKind } from "../../domain/Attempt.js"
import { Observation } from "../../domain/FailureClass.js"

/** How a committed body broke (the `end` of a `BodyReport`, minus complete / client_closed). */
export type StreamBreak = StreamBreakKind

interface ErrorLike {
  readonly code?: unknown
  readonly cause?: unknown
  readonly errors?: unknown
}

/** The error's `code`, looking through `cause` and AggregateError (happy-eyeballs connects). */
export const errorCode = (err: unknown): string | undefined => {
  for (let e = err, depth = 0; typeof e === "object" && e !== null && depth < 4; depth++) {
    const { code, cause, errors } = e as ErrorLike
    if (typeof code === "string") return code
    e = Array.isArray(errors) && errors.length > 0 ? errors[0] : cause
  }
  return undefined
}

/** A failure before any response arrived. `connected`: the request was already on a socket. */
export const observeFailure = (err: unknown, connected: boolean): Observation => {
  switch (errorCode(err)) {
    case "ECONNREFUSED":
      return Observation.ConnectionFailed({ reason: "refused" })
    case "ECONNRESET":
    case "EPIPE":
    case "ECONNABORTED":
    case "UND_ERR_SOCKET":
    case "UND_ERR_CLOSED":
      return Observation.ConnectionFailed({ reason: "reset" })
    case "UND_ERR_CONNECT_TIMEOUT":
      return Observation.TimedOut({ stage: "connect" })
    case "UND_ERR_HEADERS_TIMEOUT":
      return Observation.TimedOut({ stage: "headers" })
    case "ETIMEDOUT":
      return Observation.TimedOut({ stage: connected ? "headers" : "connect" })
    default:
      return Observation.ConnectionFailed({ reason: "other" })
  }
}

/** How a body broke after the commit point, from the error undici reported. */
export const breakOf = (err: unknown): StreamBreak => {
  switch (errorCode(err)) {
    case "ECONNRESET":
    case "EPIPE":
      return "reset"
    case "UND_ERR_BODY_TIMEOUT":
      return "stall"
    default:
      return "cut"
  }
}

const CODES: Record<StreamBreak, string> = { cut: "stream_cut", stall: "stream_stalled", reset: "stream_reset" }

const message = (kind: StreamBreak, idleMs: number): string => {
  switch (kind) {
    case "cut":
      return "The upstream closed the stream before it was complete"
    case "stall":
      return `The upstream sent nothing for ${idleMs} ms; the stream was abandoned`
    case "reset":
      return "The upstream connection was reset before the stream was complete"
  }
}

/**
 * The in-band SSE error event a client receives when a committed stream breaks (SPEC §1):
 * `data: {"error":{"message","type":"upstream_stream_error","code"}}` followed by a blank line.
 */
export const streamErrorEvent = (kind: StreamBreak, idleMs: number): Buffer =>
  Buffer.from(
    `data: ${JSON.stringify({ error: { message: message(kind, idleMs), type: "upstream_stream_error", code: CODES[kind] } })}\n\n`
  )

/** An Error for a body broken before it reached the client (non-SSE bodies cannot say it in-band). */
export const bodyBreakError = (kind: StreamBreak): Error =>
  Object.assign(new Error(`upstream body ${kind === "stall" ? "stalled" : kind}`), { code: CODES[kind] })
