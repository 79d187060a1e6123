/**
 * The scenario file format: backends with a script of upstream behaviour over virtual time, the
 * policy, the requests (listed or generated), and what should happen. Decoded from YAML names.
 */
import { Either, Option, ParseResult, Schema } from "effect"
import { Backend } from "../../domain/Backend.js"
import { PolicyFields } from "../../domain/Policy.js"
import { parseResetDuration } from "../../domain/RetryHint.js"

/** A duration: a number of milliseconds, or a string such as `250ms`, `2s`, `1m30s`, `10m`. */
export const DurationMs = Schema.transformOrFail(
  Schema.Union(Schema.Number, Schema.String),
  Schema.Number.pipe(Schema.nonNegative()),
  {
    strict: true,
    decode: (input, _, ast) => {
      if (typeof input === "number") {
        return input >= 0 ? ParseResult.succeed(input) : ParseResult.fail(new ParseResult.Type(ast, input, "must be ≥ 0"))
      }
      return Option.match(parseResetDuration(input), {
        onNone: () =>
          ParseResult.fail(new ParseResult.Type(ast, input, `"${input}" is not a duration (e.g. 250ms, 2s, 1m30s)`)),
        onSome: ParseResult.succeed
      })
    },
    encode: ParseResult.succeed
  }
)

const NonNegInt = Schema.Number.pipe(Schema.int(), Schema.nonNegative())
const PosInt = Schema.Number.pipe(Schema.int(), Schema.positive())

/** One behaviour rule of a scripted backend. The first rule that applies to a call answers it. */
export class ScriptRule extends Schema.Class<ScriptRule>("ScriptRule")({
  /** Applies to this many calls that reach it, then no more. */
  times: Schema.optional(PosInt),
  /** Applies to calls arriving in [from, until) of virtual time. */
  from: Schema.optional(DurationMs),
  until: Schema.optional(DurationMs),
  /** Applies with this probability (seeded, replayable). */
  chance: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  status: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(100, 599)), { default: () => 200 }),
  /** Raw `Retry-After` header value (seconds or HTTP-date; garbage allowed, to test it is ignored). */
  retryAfter: Schema.optional(Schema.Union(Schema.Number, Schema.String)).pipe(Schema.fromKey("retry_after")),
  retryAfterMs: Schema.optional(Schema.Union(Schema.Number, Schema.String)).pipe(Schema.fromKey("retry_after_ms")),
  resetRequests: Schema.optional(Schema.String).pipe(Schema.fromKey("reset_requests")),
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** The OpenAI error `code` of an error body, e.g. `context_length_exceeded`. */
  errorCode: Schema.optional(Schema.String).pipe(Schema.fromKey("error_code")),
  /** Virtual time the upstream takes to answer. */
  latency: Schema.optionalWith(DurationMs, { default: () => 0 }),
  /** The attempt times out at this stage, after the backend's configured timeout. */
  timeout: Schema.optional(Schema.Literal("connect", "headers", "first_token")),
  /** The connection fails before any response. */
  connection: Schema.optional(Schema.Literal("refused", "reset")),
  usage: Schema.optional(Schema.Struct({
    promptTokens: NonNegInt.pipe(Schema.propertySignature, Schema.fromKey("prompt_tokens")),
    completionTokens: NonNegInt.pipe(Schema.propertySignature, Schema.fromKey("completion_tokens"))
  }))
}) {}

export const ScenarioBackend = Schema.Struct({
  ...Backend.fields,
  baseUrl: Schema.optionalWith(Schema.String, { default: () => "http://simulated.invalid/v1" }).pipe(
    Schema.fromKey("base_url")
  ),
  script: Schema.optionalWith(Schema.Array(ScriptRule), { default: () => [] })
})
export type ScenarioBackend = typeof ScenarioBackend.Type

const Phase = Schema.Literal("direct", "primary_wait", "emergency", "exhausted")

/** What one request should end with. Every field is optional; given fields must match. */
export const RequestExpect = Schema.Struct({
  status: Schema.optional(Schema.Number),
  backend: Schema.optional(Schema.NullOr(Schema.String)),
  pool: Schema.optional(Schema.String),
  phase: Schema.optional(Phase),
  attempts: Schema.optional(NonNegInt),
  /** Virtual time from arrival to the response. */
  latency: Schema.optional(DurationMs),
  /** The `retry_after_ms` of a 503 AllPoolsExhausted. */
  retryAfter: Schema.optional(DurationMs).pipe(Schema.fromKey("retry_after"))
})
export type RequestExpect = typeof RequestExpect.Type

export const RequestGroup = Schema.Struct({
  at: Schema.optionalWith(DurationMs, { default: () => 0 }),
  /** This many requests; simultaneous, or `every` apart. */
  count: Schema.optionalWith(PosInt, { default: () => 1 }),
  every: Schema.optional(DurationMs),
  model: Schema.optional(Schema.String),
  /** The client gives up (closes the connection) this long after sending. */
  abandonAfter: Schema.optional(DurationMs).pipe(Schema.fromKey("abandon_after")),
  /** Applies to every request of the group. */
  expect: Schema.optional(RequestExpect),
  /** One per request of the group, in order. */
  expectEach: Schema.optional(Schema.Array(RequestExpect)).pipe(Schema.fromKey("expect_each"))
})
export type RequestGroup = typeof RequestGroup.Type

/** Requests arriving at a steady average rate, with seeded Poisson (or uniform) spacing. */
export const GeneratedRequests = Schema.Struct({
  generate: Schema.Struct({
    /** Requests per second, e.g. `5` or `"5/s"` or `"120/m"`. */
    rate: Schema.Union(Schema.Number.pipe(Schema.positive()), Schema.String.pipe(Schema.pattern(/^\d+(\.\d+)?\/(s|m)$/))),
    for: DurationMs,
    start: Schema.optionalWith(DurationMs, { default: () => 0 }),
    seed: Schema.optionalWith(Schema.Number.pipe(Schema.int()), { default: () => 1 }),
    arrival: Schema.optionalWith(Schema.Literal("poisson", "uniform"), { default: () => "poisson" as const }),
    model: Schema.optional(Schema.String)
  })
})
export type GeneratedRequests = typeof GeneratedRequests.Type

const Count = NonNegInt

export const ScenarioExpect = Schema.Struct({
  servedBy: Schema.optional(Schema.Record({ key: Schema.String, value: Count })).pipe(Schema.fromKey("served_by")),
  phases: Schema.optional(Schema.partial(Schema.Record({ key: Phase, value: Count }))),
  statuses: Schema.optional(Schema.Record({ key: Schema.String, value: Count })),
  /** Upstream calls per backend. */
  calls: Schema.optional(Schema.Record({ key: Schema.String, value: Count })),
  /** The exact instants at which each named backend was called. */
  callTimes: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Array(DurationMs) })).pipe(
    Schema.fromKey("call_times")
  ),
  /** The exact cooldowns each named backend went through, in order. */
  cooldowns: Schema.optional(Schema.Record({
    key: Schema.String,
    value: Schema.Array(Schema.Struct({
      at: DurationMs,
      duration: DurationMs,
      reason: Schema.optional(Schema.Literal("rate_limited", "errors"))
    }))
  })),
  funnel: Schema.optional(Schema.Struct({
    enter: Schema.optional(Count),
    recovery: Schema.optional(Count),
    exhausted: Schema.optional(Count),
    abandoned: Schema.optional(Count),
    emergencyActivations: Schema.optional(Count).pipe(Schema.fromKey("emergency_activations")),
    emergencySuccess: Schema.optional(Count).pipe(Schema.fromKey("emergency_success")),
    allPoolsExhausted: Schema.optional(Count).pipe(Schema.fromKey("all_pools_exhausted"))
  }))
})
export type ScenarioExpect = typeof ScenarioExpect.Type

export const Scenario = Schema.Struct({
  name: Schema.String,
  description: Schema.optional(Schema.String),
  /** The model of requests that do not name one. */
  model: Schema.optionalWith(Schema.String, { default: () => "test-model" }),
  /** Seed for `chance` rules. */
  seed: Schema.optionalWith(Schema.Number.pipe(Schema.int()), { default: () => 1 }),
  policy: Schema.optionalWith(Schema.Struct(PolicyFields), { default: () => Schema.decodeSync(Schema.Struct(PolicyFields))({}) }),
  backends: Schema.NonEmptyArray(ScenarioBackend),
  requests: Schema.Array(Schema.Union(GeneratedRequests, RequestGroup)),
  expect: Schema.optional(ScenarioExpect)
})
export type Scenario = typeof Scenario.Type

export const decodeScenario = (input: unknown) =>
  Schema.decodeUnknownEither(Scenario, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Either.mapLeft((e) =>
      ParseResult.ArrayFormatter.formatErrorSync(e).map((issue) =>
        `${issue.path.length === 0 ? "(top level)" : formatPath(issue.path)}: ${issue.message}`
      )
    )
  )

/** `backends[2].script[0].status` from a ParseResult path. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join("")
