/**
 * How a request ends when it gets an upstream answer: served (2xx, committed) or an upstream
 * refusal passed through to the client as-is (a caller-fault 4xx).
 */
import { Data } from "effect"
import { cached } from "./TaggedEnum.js"
import type { AttemptRecord } from "./Attempt.js"
import type { Backend } from "./Backend.js"
import type { Phase } from "./Phase.js"
import type { UpstreamResponse } from "./ProxyRequest.js"

export type RequestOutcome = Data.TaggedEnum<{
  Served: {
    readonly response: UpstreamResponse
    readonly backend: string
    /** The backend's configuration at send time (its prices settle the cost). */
    readonly served: Backend
    readonly pool: string
    readonly phase: Phase
    readonly attempts: number
    /** The served attempt's record, to be completed with tokens and duration when the body ends. */
    readonly record: AttemptRecord
    readonly startedAt: number
  }
  PassedThrough: {
    readonly response: UpstreamResponse
    readonly backend: string
    readonly pool: string
    readonly phase: Phase
    readonly attempts: number
    readonly startedAt: number
  }
}>
export const RequestOutcome = cached(Data.taggedEnum<RequestOutcome>())

export type Served = Data.TaggedEnum.Value<RequestOutcome, "Served">
export type PassedThrough = Data.TaggedEnum.Value<RequestOutcome, "PassedThrough">
