// FailureClass: every branch of the one classifier (status / headers / error code → class) and
// the metric outcome label of each class.
import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { classify, FailureClass, Observation, type OutcomeLabel, outcomeLabel } from "../../src/domain/FailureClass.js"

const NEXT_POOL_ON = ["context_length_exceeded"]
const NOW = 1_000_000

const response = (status: number, extra: { errorCode?: string; errorMessage?: string; headers?: Record<string, string> } = {}) =>
  Observation.Response({
    status,
    headers: extra.headers ?? {},
    errorCode: extra.errorCode,
    errorMessage: extra.errorMessage
  })

describe("classify", () => {
  it.each<[string, Observation, FailureClass]>([
    ["200", response(200), FailureClass.Success()],
    ["201", response(201), FailureClass.Success()],
    ["204", response(204), FailureClass.Success()],
    ["299", response(299), FailureClass.Success()],
    ["429 without hint", response(429), FailureClass.RateLimited({ hintMs: Option.none() })],
    ["429 with Retry-After: 2", response(429, { headers: { "retry-after": "2" } }), FailureClass.RateLimited({ hintMs: Option.some(2000) })],
    ["429 with garbage Retry-After", response(429, { headers: { "retry-after": "soon" } }), FailureClass.RateLimited({ hintMs: Option.none() })],
    [
      "429 with retry-after-ms",
      response(429, { headers: { "retry-after-ms": "1500", "retry-after": "9" } }),
      FailureClass.RateLimited({ hintMs: Option.some(1500) })
    ],
    ...[500, 502, 503, 504, 529, 520, 521, 522, 523, 524].map((s): [string, Observation, FailureClass] => [
      String(s),
      response(s),
      FailureClass.Transient({ kind: "server_error", status: Option.some(s) })
    ]),
    ["501 is a permanent answer", response(501), FailureClass.CallerFault({ status: 501 })],
    ["505", response(505), FailureClass.CallerFault({ status: 505 })],
    ["519 (outside the Cloudflare range)", response(519), FailureClass.CallerFault({ status: 519 })],
    ["525 (outside the Cloudflare range)", response(525), FailureClass.CallerFault({ status: 525 })],
    [
      "400 with a code in next_pool_on",
      response(400, { errorCode: "context_length_exceeded" }),
      FailureClass.NextPool({ code: "context_length_exceeded" })
    ],
    ["400 with a code not in next_pool_on", response(400, { errorCode: "invalid_request_error" }), FailureClass.CallerFault({ status: 400 })],
    ["400 without code or message", response(400), FailureClass.CallerFault({ status: 400 })],
    [
      "400 with vLLM's context-length message and no code",
      response(400, { errorMessage: "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens." }),
      FailureClass.NextPool({ code: "context_length_exceeded" })
    ],
    [
      "400 with a context-length message but an explicit other code: the code wins",
      response(400, { errorCode: "invalid_value", errorMessage: "maximum context length is 8192 tokens" }),
      FailureClass.CallerFault({ status: 400 })
    ],
    [
      "400 with an unrelated message",
      response(400, { errorMessage: "messages must be an array" }),
      FailureClass.CallerFault({ status: 400 })
    ],
    [
      "413 with a next_pool_on code is not a next-pool answer (only 400 is)",
      response(413, { errorCode: "context_length_exceeded" }),
      FailureClass.CallerFault({ status: 413 })
    ],
    ["401", response(401), FailureClass.KeyRejected({ status: 401 })],
    ["403", response(403), FailureClass.KeyRejected({ status: 403 })],
    ["404", response(404), FailureClass.CallerFault({ status: 404 })],
    ["409", response(409), FailureClass.CallerFault({ status: 409 })],
    ["422", response(422), FailureClass.CallerFault({ status: 422 })],
    ["connection refused", Observation.ConnectionFailed({ reason: "refused" }), FailureClass.Transient({ kind: "connect_error", status: Option.none() })],
    ["connection reset", Observation.ConnectionFailed({ reason: "reset" }), FailureClass.Transient({ kind: "connect_error", status: Option.none() })],
    ["connection other", Observation.ConnectionFailed({ reason: "other" }), FailureClass.Transient({ kind: "connect_error", status: Option.none() })],
    ["connect timeout", Observation.TimedOut({ stage: "connect" }), FailureClass.Timeout({ stage: "connect" })],
    ["headers timeout", Observation.TimedOut({ stage: "headers" }), FailureClass.Timeout({ stage: "headers" })],
    ["first-token timeout", Observation.TimedOut({ stage: "first_token" }), FailureClass.Timeout({ stage: "first_token" })],
    [
      "a stream opening with an in-band rate limit (no hint)",
      Observation.StreamError({ kind: "rate_limited", code: "rate_limit_exceeded" }),
      FailureClass.RateLimited({ hintMs: Option.none() })
    ],
    [
      "a stream opening with an in-band server error",
      Observation.StreamError({ kind: "server_error", code: undefined }),
      FailureClass.Transient({ kind: "server_error", status: Option.none() })
    ]
  ])("%s", (_, observation, expected) => {
    expect(classify(observation, NEXT_POOL_ON, NOW)).toEqual(expected)
  })

  it("next_pool_on is the configured list: an empty list makes context-length a caller fault", () => {
    expect(classify(response(400, { errorCode: "context_length_exceeded" }), [], NOW)).toEqual(
      FailureClass.CallerFault({ status: 400 })
    )
  })

  it("a custom next_pool_on code routes to the next pool", () => {
    expect(classify(response(400, { errorCode: "model_too_small" }), ["model_too_small"], NOW)).toEqual(
      FailureClass.NextPool({ code: "model_too_small" })
    )
  })

  it("an HTTP-date hint is read relative to now", () => {
    const date = "Wed, 21 Oct 2015 07:28:00 GMT"
    expect(classify(response(429, { headers: { "retry-after": date } }), NEXT_POOL_ON, Date.parse(date) - 4000)).toEqual(
      FailureClass.RateLimited({ hintMs: Option.some(4000) })
    )
  })
})

describe("classify: known bugs", () => {
  // BUG (RetryHint.parseRetryAfter): Date.parse accepts "wait 10" as 1 Oct 2001, so this garbage
  // becomes a 0 ms hint — a 0 ms cooldown — instead of no hint (base_ms).
  it("a 429 with a garbage Retry-After that Date.parse accepts has no hint", () => {
    expect(classify(response(429, { headers: { "retry-after": "wait 10" } }), NEXT_POOL_ON, NOW)).toEqual(
      FailureClass.RateLimited({ hintMs: Option.none() })
    )
  })
})

describe("outcomeLabel", () => {
  it.each<[string, FailureClass, OutcomeLabel]>([
    ["Success", FailureClass.Success(), "success"],
    ["RateLimited", FailureClass.RateLimited({ hintMs: Option.none() }), "rate_limited"],
    ["Transient server_error", FailureClass.Transient({ kind: "server_error", status: Option.some(502) }), "server_error"],
    ["Transient connect_error", FailureClass.Transient({ kind: "connect_error", status: Option.none() }), "connect_error"],
    ["Timeout", FailureClass.Timeout({ stage: "first_token" }), "timeout"],
    ["NextPool", FailureClass.NextPool({ code: "context_length_exceeded" }), "client_error"],
    ["KeyRejected", FailureClass.KeyRejected({ status: 401 }), "client_error"],
    ["CallerFault 4xx", FailureClass.CallerFault({ status: 404 }), "client_error"],
    ["CallerFault 501", FailureClass.CallerFault({ status: 501 }), "server_error"]
  ])("%s → %s", (_, cls, label) => {
    expect(outcomeLabel(cls)).toBe(label)
  })
})
