/**
 * Shared helpers of the phases: turning an attempt result into an outcome, and the pool bookkeeping
 * of `next_pool_on`.
 */
import { Option } from "effect"
import type { AttemptResult } from "./AttemptRunner.js"
import type { Phase } from "./Phase.js"
import type { UpstreamResponse } from "./ProxyRequest.js"
import type { RequestContext } from "./RequestContext.js"
import { RequestOutcome } from "./RequestOutcome.js"

const missingResponse: UpstreamResponse = { status: 502 }

export const served = (ctx: RequestContext, r: AttemptResult, phase: Phase): RequestOutcome =>
  RequestOutcome.Served({
    response: r.reply.response ?? missingResponse,
    backend: r.ticket.backend.id,
    served: r.ticket.backend,
    pool: r.ticket.backend.pool,
    phase,
    attempts: ctx.attempts,
    record: r.record,
    startedAt: ctx.startedAt
  })

export const passedThrough = (ctx: RequestContext, r: AttemptResult, phase: Phase): RequestOutcome =>
  RequestOutcome.PassedThrough({
    response: r.reply.response ?? { status: r.record.status ?? 502 },
    backend: r.ticket.backend.id,
    pool: r.ticket.backend.pool,
    phase,
    attempts: ctx.attempts,
    startedAt: ctx.startedAt
  })

/**
 * The attempts that end the request at once, whatever the phase: a 2xx is served, a caller-fault
 * 4xx is passed through. Also keeps the `next_pool_on` bookkeeping. None: the phase goes on.
 */
export const settle = (ctx: RequestContext, r: AttemptResult, phase: Phase): Option.Option<RequestOutcome> => {
  ctx.lastWasRefusal = r.class._tag === "NextPool"
  switch (r.class._tag) {
    case "Success":
      return Option.some(served(ctx, r, phase))
    case "CallerFault":
      return Option.some(passedThrough(ctx, r, phase))
    case "NextPool": {
      ctx.lastRefusal = r
      const i = ctx.pools.indexOf(r.ticket.backend.pool)
      if (i >= 0) ctx.pools = ctx.pools.slice(i + 1)
      return Option.none()
    }
    default:
      return Option.none()
  }
}
