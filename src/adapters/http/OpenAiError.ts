/**
 * Sidecar's own error answers, in the OpenAI error shape `{"error":{"message","type","code"}}`,
 * and the one mapping from lifecycle errors to HTTP answers.
 */
import { Match } from "effect"
import type { LifecycleError } from "../../domain/Errors.js"

export interface ErrorAnswer {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

export const errorBody = (message: string, type: string, code: string | null, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ error: { message, type, code, ...extra } })

export const errorAnswer = (
  status: number,
  message: string,
  type: string,
  code: string | null,
  headers: Record<string, string> = {}
): ErrorAnswer => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  body: errorBody(message, type, code)
})

export interface ExhaustedOptions {
  /** `routing.exhausted_should_retry`: when false, tell OpenAI SDKs not to retry the 503 themselves. */
  readonly shouldRetry: boolean
}

export const fromLifecycleError = (e: LifecycleError, options: ExhaustedOptions): ErrorAnswer =>
  Match.value(e).pipe(
    Match.tagsExhaustive({
      AllPoolsExhausted: (x) => ({
        status: 503,
        headers: {
          "content-type": "application/json",
          "retry-after": String(Math.max(1, Math.ceil(x.retryAfterMs / 1000))),
          ...(options.shouldRetry ? {} : { "x-should-retry": "false" })
        },
        body: errorBody(x.message, "AllPoolsExhausted", "all_pools_exhausted", { retry_after_ms: x.retryAfterMs })
      }),
      ModelNotServed: (x) => errorAnswer(404, x.message, "invalid_request_error", "model_not_found")
    })
  )
