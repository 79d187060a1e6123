/**
 * The one classifier: what an upstream attempt's result means for routing. Everything
 * else switches on the class, never on status codes or message strings.
 */
import { Data, Option } from "effect"
import { cached } from "./TaggedEnum.js"
import { type HeaderBag, retryHintMs } from "./RetryHint.js"

/** What the upstream adapter observed, before any interpretation. */
export type Observation = Data.TaggedEnum<{
  /** A response arrived (status + headers; for error statuses, the error code read from the small body). */
  Response: {
    readonly status: number
    readonly headers: HeaderBag
    readonly errorCode?: string | undefined
    readonly errorMessage?: string | undefined
  }
  /** Connection refused or reset before any response. */
  ConnectionFailed: { readonly reason: "refused" | "reset" | "other" }
  /** The attempt ran out of time before the commit point. */
  TimedOut: { readonly stage: "connect" | "headers" | "first_token" }
  /**
   * A 2xx event stream whose first data event was an in-band error saying the upstream could not
   * serve (rate limit or server trouble): a failure before the commit point, like its status twin.
   */
  StreamError: { readonly kind: "rate_limited" | "server_error"; readonly code: string | undefined }
}>
export const Observation = cached(Data.taggedEnum<Observation>())

/** The closed set of meanings. Each names what routing does with it. */
export type FailureClass = Data.TaggedEnum<{
  /** 2xx: serve it; the backend's failure streaks end. */
  Success: {}
  /** 429: cool the backend down (hint first); wait for it if short and in the best pool. */
  RateLimited: { readonly hintMs: Option.Option<number> }
  /** 5xx or a connection failure before any response: retry the same backend, then move on. */
  Transient: { readonly kind: "server_error" | "connect_error"; readonly status: Option.Option<number> }
  /** Connect, headers or first-token timeout: an error, never retried on the same backend. */
  Timeout: { readonly stage: "connect" | "headers" | "first_token" }
  /** 400 with a code in `routing.next_pool_on`: try the next pool, no cooldown. */
  NextPool: { readonly code: string }
  /** 401/403: Sidecar's own key for this backend is refused (the client's key is never forwarded). */
  KeyRejected: { readonly status: number }
  /** Any other 4xx (and the odd non-retryable status): the caller's fault, returned as-is. */
  CallerFault: { readonly status: number }
}>
export const FailureClass = cached(Data.taggedEnum<FailureClass>())

/** The `outcome` label of `sidecar_upstream_attempts_total`. */
export type OutcomeLabel = "success" | "rate_limited" | "server_error" | "timeout" | "connect_error" | "client_error"

export const outcomeLabel = (c: FailureClass): OutcomeLabel => {
  switch (c._tag) {
    case "Success":
      return "success"
    case "RateLimited":
      return "rate_limited"
    case "Transient":
      return c.kind
    case "Timeout":
      return "timeout"
    case "NextPool":
    case "KeyRejected":
      return "client_error"
    case "CallerFault":
      return c.status >= 500 ? "server_error" : "client_error"
  }
}

/**
 * Statuses retried as transient. SPEC §1: 500, 502, 503, 504. Also 529 (Anthropic-compatible
 * gateways: "overloaded") and 520-524 (Cloudflare in front of an origin that failed).
 * 501 and 505 are permanent answers about the request, returned as-is.
 */
const transientStatus = (s: number) => s === 500 || s === 502 || s === 503 || s === 504 || s === 529 || (s >= 520 && s <= 524)

/**
 * Context-length refusals that some servers send without OpenAI's `context_length_exceeded`
 * code (vLLM: "This model's maximum context length is 8192 tokens ...", code 400).
 */
const contextLengthMessage = /maximum context length|context length exceeded|context_length_exceeded/i

export const classify = (observation: Observation, nextPoolOn: ReadonlyArray<string>, now: number): FailureClass => {
  switch (observation._tag) {
    case "ConnectionFailed":
      return FailureClass.Transient({ kind: "connect_error", status: Option.none() })
    case "TimedOut":
      return FailureClass.Timeout({ stage: observation.stage })
    case "StreamError":
      return observation.kind === "rate_limited"
        ? FailureClass.RateLimited({ hintMs: Option.none() })
        : FailureClass.Transient({ kind: "server_error", status: Option.none() })
    case "Response": {
      const { status } = observation
      if (status >= 200 && status < 300) return FailureClass.Success()
      if (status === 429) return FailureClass.RateLimited({ hintMs: retryHintMs(observation.headers, now) })
      if (transientStatus(status)) return FailureClass.Transient({ kind: "server_error", status: Option.some(status) })
      if (status === 400) {
        const code = observation.errorCode ??
          (contextLengthMessage.test(observation.errorMessage ?? "") ? "context_length_exceeded" : undefined)
        if (code !== undefined && nextPoolOn.includes(code)) return FailureClass.NextPool({ code })
      }
      if (status === 401 || status === 403) return FailureClass.KeyRejected({ status })
      return FailureClass.CallerFault({ status })
    }
  }
}
