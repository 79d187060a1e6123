/**
 * One proxied request, from a parsed client request to the bytes on the wire: runs the lifecycle
 * in a fiber, answers from its outcome, streams the committed body, and settles usage at the end.
 * The client leaving interrupts the fiber (before the commit) or destroys the body (after it),
 * which aborts the upstream request either way.
 */
import { Cause, Effect, Exit, type Fiber, FiberRef, FiberRefs, Option, Runtime, type Tracer } from "effect"
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http"
import * as Lifecycle from "../../domain/Lifecycle.js"
import { LifecycleEvent } from "../../domain/LifecycleEvent.js"
import type { Phase } from "../../domain/Phase.js"
import { LifecycleEvents } from "../../domain/ports/LifecycleEvents.js"
import type { RequestOutcome } from "../../domain/RequestOutcome.js"
import type { LifecycleError } from "../../domain/Errors.js"
import type { BodyReport, HttpProxyRequest, HttpUpstreamResponse } from "../upstream/HttpExchange.js"
import { withRequestSpan } from "../telemetry/Tracing.js"
import { type ErrorAnswer, errorAnswer, fromLifecycleError } from "./OpenAiError.js"
import * as CompletionPump from "./CompletionPump.js"
import { ServedStream } from "./ServedStream.js"

/** Whatever the lifecycle needs, provided once by the server's runtime. */
export type LifecycleDeps = Effect.Effect.Context<ReturnType<typeof Lifecycle.handle>> | LifecycleEvents
export type LifecycleRuntime = Runtime.Runtime<LifecycleDeps>

/** The runtime's entry points, made once per server rather than once per request. */
export interface ExchangeRunner {
  readonly fork: <A, E>(effect: Effect.Effect<A, E, LifecycleDeps>) => Fiber.RuntimeFiber<A, E>
  /** Runs a request's follow-up work (settlement, completion event) on the completion pump. */
  readonly complete: (work: Effect.Effect<void, never, LifecycleDeps>, then: () => void) => void
  /** Whether the runtime traces (fixed with its layers): only then is a request's span kept. */
  readonly tracing: boolean
}

/**
 * Fibers run here log no "Fiber terminated with an unhandled error" line: the exchange observes
 * every failure and answers or logs it itself, with the request's id. That is set once on the
 * runtime (a FiberRef set per request copied the fiber's whole FiberRefs map).
 */
export const makeRunner = (runtime: LifecycleRuntime): ExchangeRunner => {
  const quiet = Runtime.setFiberRef(runtime, FiberRef.unhandledErrorLogLevel, Option.none())
  return {
    fork: Runtime.runFork(quiet),
    complete: CompletionPump.make(quiet).complete,
    tracing: FiberRefs.getOrDefault(runtime.fiberRefs, FiberRef.currentTracerEnabled)
  }
}

export interface ExchangeOptions {
  readonly exhaustedShouldRetry: boolean
}

/** Writes the `x-request-id` and `x-sidecar-*` headers (SPEC §1) into `into`, and returns it. */
const withSidecarHeaders = <H extends Record<string, unknown>>(
  into: H,
  requestId: string,
  phase: Phase,
  attempts: number,
  backend?: string,
  pool?: string
): H => {
  const h = into as Record<string, unknown>
  h["x-request-id"] = requestId
  h["x-sidecar-phase"] = phase
  h["x-sidecar-attempts"] = String(attempts)
  if (backend !== undefined) h["x-sidecar-backend"] = backend
  if (pool !== undefined) h["x-sidecar-pool"] = pool
  return into
}

export const writeError = (res: ServerResponse, answer: ErrorAnswer, extra: Record<string, string> = {}) => {
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(answer.status, { ...answer.headers, ...extra, "content-length": Buffer.byteLength(answer.body) })
  res.end(answer.body)
}

/**
 * Runs one request. `startedAt` is the epoch ms at which the request arrived (for its duration);
 * `onDone` is called exactly once when the exchange is over (graceful shutdown counts on it).
 */
export const runExchange = (
  runner: ExchangeRunner,
  options: ExchangeOptions,
  request: HttpProxyRequest,
  req: IncomingMessage,
  res: ServerResponse,
  startedAt: number,
  onDone: () => void
): void => {
  const run = runner.fork
  const complete = (phase: Phase, status: number, attempts: number, backend: string | undefined, extra?: Effect.Effect<void, never, LifecycleDeps>) => {
    const event = LifecycleEvents.pipe(Effect.flatMap((events) =>
      events.emit(LifecycleEvent.RequestCompleted({
        requestId: request.id,
        model: request.model,
        phase,
        status,
        attempts,
        backend,
        durationMs: Date.now() - startedAt
      }))
    ))
    // Done only once the usage record is queued: a graceful shutdown drains the ledger after this.
    runner.complete(extra === undefined ? event : Effect.zipRight(extra, event), onDone)
  }

  /** The request's span when tracing is on: a continuation's attempts are its children too. */
  let span: Tracer.AnySpan | undefined
  const keepSpan = runner.tracing ? (s: Tracer.Span) => void (span = s) : undefined
  const fiber = run(Lifecycle.handle(request).pipe(withRequestSpan(request, keepSpan)))
  let committed = false
  const onClientGone = () => {
    if (!committed) fiber.unsafeInterruptAsFork(fiber.id())
  }
  res.once("close", onClientGone)
  req.once("aborted", onClientGone)

  fiber.addObserver((exit: Exit.Exit<RequestOutcome, LifecycleError>) => {
    committed = true
    if (Exit.isSuccess(exit)) return answerOutcome(exit.value)
    const failure = Cause.failureOption(exit.cause)
    if (failure._tag === "Some") {
      const e = failure.value
      const tried = e._tag === "AllPoolsExhausted" ? e.attempts : []
      const attempts = tried.length
      // No backend answered; the pool header names the pool of the last attempt, if any.
      const headers = withSidecarHeaders<Record<string, string>>({}, request.id, "exhausted", attempts, undefined, tried[attempts - 1]?.pool)
      writeError(res, fromLifecycleError(e, { shouldRetry: options.exhaustedShouldRetry }), headers)
      return complete("exhausted", e._tag === "AllPoolsExhausted" ? 503 : 404, attempts, undefined)
    }
    if (Cause.isInterruptedOnly(exit.cause)) return complete("direct", 499, 0, undefined)
    run(Effect.logError("request_failed").pipe(Effect.annotateLogs({ request_id: request.id, cause: Cause.pretty(exit.cause) })))
    writeError(res, errorAnswer(500, "Sidecar failed to handle the request", "internal_error", "internal_error"), { "x-request-id": request.id })
    complete("direct", 500, 0, undefined)
  })

  const answerOutcome = (o: RequestOutcome) => {
    const response = o.response as HttpUpstreamResponse
    if (res.destroyed) {
      response.body.destroy()
      return complete(o.phase, 499, o.attempts, o.backend)
    }
    // The response's header object is this response's own: Sidecar's headers are added to it in
    // place (spreading two header objects into a third was the hottest line of a profile).
    res.writeHead(
      response.status,
      withSidecarHeaders(response.headers as OutgoingHttpHeaders, request.id, o.phase, o.attempts, o.backend, o.pool)
    )
    // pipe + explicit teardown, not stream.pipeline: no AbortController per request (measured).
    response.body.once("error", () => res.destroy())
    res.once("close", () => {
      if (!response.body.destroyed) response.body.destroy()
    })
    response.body.pipe(res)
    const served = o._tag === "Served" ? new ServedStream(runner, request, o, response.body, span) : undefined
    void response.finished.then((report: BodyReport) => {
      const end = () =>
        complete(
          o.phase,
          report.end === "client_closed" ? 499 : response.status,
          served?.attempts ?? o.attempts,
          o.backend,
          served?.settleEnd(report)
        )
      if (served === undefined) end()
      else served.whenIdle(end)
    })
  }
}
