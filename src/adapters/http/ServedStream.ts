/**
 * The upstream attempts behind one served response: the one feeding the client now and, after a
 * break of its stream, the continuations that take over (SPEC §1 "After the commit point"). Each
 * attempt's usage is settled when its part of the body ends; the break and what came of it are
 * the domain's `continueStream`.
 */
import { Effect, Exit, type Fiber, Option, type Tracer } from "effect"
import type { AttemptRecord, StreamBreakKind } from "../../domain/Attempt.js"
import type { Backend } from "../../domain/Backend.js"
import * as Continuation from "../../domain/Continuation.js"
import * as Lifecycle from "../../domain/Lifecycle.js"
import { makeRequestContext, type RequestContext } from "../../domain/RequestContext.js"
import type { Served } from "../../domain/RequestOutcome.js"
import { continuationRequest } from "../upstream/ContinuationRequest.js"
import type { BodyReport, HttpProxyRequest } from "../upstream/HttpExchange.js"
import { type BodyBreak, ResponseBody } from "../upstream/ResponseBody.js"
import type { ExchangeRunner, LifecycleDeps } from "./ProxyExchange.js"

/** An attempt whose body feeds (or fed) the client: its record to settle, and the prices to settle it at. */
interface Feeding {
  readonly record: AttemptRecord
  readonly backend: Backend
}

const isBreak = (end: BodyReport["end"]): end is StreamBreakKind => end === "cut" || end === "stall" || end === "reset"

/**
 * Invariants: every attempt that fed the body is settled exactly once (at its break, or when the
 * body ends); a break is handled only after the previous one is (a continuation that breaks while
 * its own search is finishing waits its turn), and so is the end of the body. When nothing
 * continues, the client gets the first break's error, whatever broke after it.
 */
export class ServedStream {
  /** The attempt feeding the body now; undefined between a break and a continuation. */
  private current: Feeding | undefined
  /**
   * The request's attempts for continuations (counted in it, even those the client cut short);
   * made at the first break, so an unbroken answer costs nothing here.
   */
  private ctx: RequestContext | undefined = undefined
  private continuations = 0
  /** The first break of the answer: what the client is told if nothing continues it. */
  private original: BodyBreak | undefined
  private searching = false
  private readonly waiting: Array<() => void> = []

  constructor(
    private readonly runner: ExchangeRunner,
    private readonly request: HttpProxyRequest,
    private readonly served: Served,
    body: unknown,
    /** The request's span (tracing on): continuation attempts are its children, as the others are. */
    private readonly requestSpan?: Tracer.AnySpan
  ) {
    this.current = { record: served.record, backend: served.served }
    if (body instanceof ResponseBody) body.onBreak = (brk) => this.whenIdle(() => this.onBreak(body, brk))
  }

  /** Upstream attempts the request made so far, continuations included. */
  get attempts(): number {
    return this.ctx?.attempts ?? this.served.attempts
  }

  /** Runs `f` once no continuation search is under way. */
  whenIdle(f: () => void): void {
    if (this.searching) this.waiting.push(f)
    else f()
  }

  /** The body ended: what settles the attempt that fed it last, if its break has not already. */
  settleEnd(report: BodyReport): Effect.Effect<void, never, LifecycleDeps> | undefined {
    const last = this.current
    this.current = undefined
    if (last === undefined) return undefined
    const settle = this.settle(last, report.promptTokens, report.completionTokens, report.end)
    // A body that cannot carry an in-band error (not an event stream) broke: counted, not continued.
    return isBreak(report.end) ? Effect.asVoid(Effect.zipRight(settle, this.search(last.backend, report.end, Option.none()))) : settle
  }

  private onBreak(body: ResponseBody, brk: BodyBreak): void {
    const original = this.original ?? brk
    this.original = original
    const broken = this.current
    if (broken === undefined) return body.giveUp(original)
    this.current = undefined
    this.searching = true
    let fiber: Fiber.RuntimeFiber<Continuation.ContinuationResult> | undefined
    body.awaitContinuation(() => fiber?.unsafeInterruptAsFork(fiber.id()))
    const program = Effect.zipRight(
      this.settle(broken, brk.promptTokens, brk.completionTokens, brk.kind),
      this.search(broken.backend, brk.kind, Option.fromNullable(continuationRequest(this.request, body)))
    )
    fiber = this.runner.fork(this.requestSpan === undefined ? program : Effect.withParentSpan(program, this.requestSpan))
    fiber.addObserver((exit) => {
      if (Exit.isSuccess(exit)) {
        const r = exit.value
        this.continuations = r.continuations
        if (r._tag === "Continued") this.current = { record: r.record, backend: r.backend }
        else body.giveUp(original)
      } else body.giveUp(original) // the client left (the body is gone: a no-op) or a defect
      this.searching = false
      for (const f of this.waiting.splice(0)) f()
    })
  }

  private search(broken: Backend, kind: StreamBreakKind, continuation: Option.Option<HttpProxyRequest>) {
    let ctx = this.ctx
    if (ctx === undefined) {
      ctx = this.ctx = makeRequestContext(this.request, [], this.served.startedAt)
      ctx.attempts = this.served.attempts
    }
    return Continuation.continueStream({
      ctx,
      phase: this.served.phase,
      broken,
      kind,
      continuation,
      continuations: this.continuations
    })
  }

  private settle(
    attempt: Feeding,
    promptTokens: number | undefined,
    completionTokens: number | undefined,
    end: BodyReport["end"]
  ) {
    return Lifecycle.settleAttempt(attempt.record, attempt.backend, {
      promptTokens,
      completionTokens,
      durationMs: Date.now() - attempt.record.at,
      end
    })
  }
}
