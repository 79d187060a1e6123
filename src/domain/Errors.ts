/**
 * The lifecycle's failures. A caller-fault 4xx is not among them: it is a response, passed through.
 */
import { Data } from "effect"
import type { AttemptSummary } from "./Attempt.js"

/** Every phase ran out: the caller's own fallback chain should act (HTTP 503, type AllPoolsExhausted). */
export class AllPoolsExhausted extends Data.TaggedError("AllPoolsExhausted")<{
  readonly model: string
  /** Every upstream attempt the request made, in order. */
  readonly attempts: ReadonlyArray<AttemptSummary>
  /** Milliseconds until the earliest backend serving the model is free again (≥ 1000 when reported). */
  readonly retryAfterMs: number
}> {
  override get message() {
    return `All provider pools exhausted for model ${this.model}`
  }
}

/** No configured backend serves the model at all (HTTP 404, code model_not_found). */
export class ModelNotServed extends Data.TaggedError("ModelNotServed")<{ readonly model: string }> {
  override get message() {
    return `No backend serves model ${this.model}`
  }
}

export type LifecycleError = AllPoolsExhausted | ModelNotServed
