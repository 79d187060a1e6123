/**
 * The routing policy blocks of the config file (`routing`, `cooldown`, `primary_wait`,
 * `emergency`) with SPEC §4's defaults. Decoded from snake_case, used in camelCase.
 */
import { Context, Schema } from "effect"

const NonNegInt = Schema.Number.pipe(Schema.int(), Schema.nonNegative())
const PosInt = Schema.Number.pipe(Schema.int(), Schema.positive())

const withDefault = <A, I, R>(schema: Schema.Schema<A, I, R>, value: A) =>
  Schema.optionalWith(schema, { default: () => value })

export class RoutingPolicy extends Schema.Class<RoutingPolicy>("RoutingPolicy")({
  maxAttempts: withDefault(PosInt, 4).pipe(Schema.fromKey("max_attempts")),
  pools: withDefault(
    Schema.NonEmptyArray(Schema.NonEmptyTrimmedString).pipe(
      Schema.filter((ps) => new Set(ps).size === ps.length || "pools must be distinct")
    ),
    ["primary", "fallback"]
  ),
  waitIfShorterThanMs: withDefault(NonNegInt, 3000).pipe(Schema.fromKey("wait_if_shorter_than_ms")),
  sameBackendRetries: withDefault(NonNegInt, 1).pipe(Schema.fromKey("same_backend_retries")),
  nextPoolOn: withDefault(Schema.Array(Schema.String), ["context_length_exceeded"]).pipe(
    Schema.fromKey("next_pool_on")
  ),
  exhaustedShouldRetry: withDefault(Schema.Boolean, false).pipe(Schema.fromKey("exhausted_should_retry")),
  maxContinuations: withDefault(NonNegInt, 2).pipe(Schema.fromKey("max_continuations"))
}) {}

export class CooldownPolicy extends Schema.Class<CooldownPolicy>("CooldownPolicy")({
  baseMs: withDefault(NonNegInt, 5000).pipe(Schema.fromKey("base_ms")),
  multiplier: withDefault(Schema.Number.pipe(Schema.greaterThanOrEqualTo(1)), 2),
  maxMs: withDefault(NonNegInt, 300_000).pipe(Schema.fromKey("max_ms")),
  honorRetryAfter: withDefault(Schema.Boolean, true).pipe(Schema.fromKey("honor_retry_after")),
  errorThreshold: withDefault(PosInt, 3).pipe(Schema.fromKey("error_threshold")),
  errorMs: withDefault(NonNegInt, 10_000).pipe(Schema.fromKey("error_ms"))
}) {}

export class PrimaryWaitPolicy extends Schema.Class<PrimaryWaitPolicy>("PrimaryWaitPolicy")({
  intervalMs: withDefault(NonNegInt, 5000).pipe(Schema.fromKey("interval_ms")),
  maxRetries: withDefault(NonNegInt, 3).pipe(Schema.fromKey("max_retries"))
}) {}

export class EmergencyPolicy extends Schema.Class<EmergencyPolicy>("EmergencyPolicy")({
  rpmFraction: withDefault(Schema.Number.pipe(Schema.between(0, 1)), 0.25).pipe(Schema.fromKey("rpm_fraction")),
  defaultRpm: withDefault(PosInt, 40).pipe(Schema.fromKey("default_rpm")),
  maxAttempts: withDefault(NonNegInt, 3).pipe(Schema.fromKey("max_attempts"))
}) {}

/** Every policy block together: what the lifecycle needs besides the backends. */
export const PolicyFields = {
  routing: withDefault(RoutingPolicy, RoutingPolicy.make({})),
  cooldown: withDefault(CooldownPolicy, CooldownPolicy.make({})),
  primaryWait: withDefault(PrimaryWaitPolicy, PrimaryWaitPolicy.make({})).pipe(Schema.fromKey("primary_wait")),
  emergency: withDefault(EmergencyPolicy, EmergencyPolicy.make({}))
}

export class PolicyConfig extends Schema.Class<PolicyConfig>("PolicyConfig")(PolicyFields) {}

export const defaultPolicy: PolicyConfig = PolicyConfig.make({})

/** The policy in force, provided by the app (from the config file) or by a scenario. */
export class Policy extends Context.Tag("sidecar/Policy")<Policy, PolicyConfig>() {}
