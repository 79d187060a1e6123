/**
 * The per-request working state of the lifecycle: one plain object owned by one request's fiber.
 */
import type { AttemptRecord } from "./Attempt.js"
import type { AttemptResult } from "./AttemptRunner.js"
import type { ProxyRequest } from "./ProxyRequest.js"

export interface RequestContext {
  readonly request: ProxyRequest
  /** Epoch ms at which the request arrived. */
  readonly startedAt: number
  /** Pools still allowed, in order; `next_pool_on` answers drop the pools up to the refusing one. */
  pools: ReadonlyArray<string>
  /** Upstream attempts so far, over all phases. */
  attempts: number
  /** Every attempt's record, in order. */
  readonly trail: Array<AttemptRecord>
  /** The most recent attempt that ended in a `next_pool_on` refusal, returned if nothing else serves. */
  lastRefusal: AttemptResult | undefined
  /** Whether the most recent attempt was that refusal. */
  lastWasRefusal: boolean
}

export const makeRequestContext = (
  request: ProxyRequest,
  pools: ReadonlyArray<string>,
  startedAt: number
): RequestContext => ({
  request,
  startedAt,
  pools,
  attempts: 0,
  trail: [],
  lastRefusal: undefined,
  lastWasRefusal: false
})
