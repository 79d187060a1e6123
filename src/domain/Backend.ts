/**
 * An upstream backend: one API key on one OpenAI-compatible endpoint, in one pool.
 * The schema decodes the YAML / admin-API field names (snake_case) into the domain shape.
 */
import { Redacted, Schema } from "effect"

const NonNegative = Schema.Number.pipe(Schema.nonNegative())
const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())

/** How one canonical model maps onto this backend: upstream name and prices (USD per million tokens). */
export class ModelRoute extends Schema.Class<ModelRoute>("ModelRoute")({
  upstream: Schema.optional(Schema.NonEmptyTrimmedString),
  inputPerMtok: Schema.optionalWith(NonNegative, { default: () => 0 }).pipe(Schema.fromKey("input_per_mtok")),
  outputPerMtok: Schema.optionalWith(NonNegative, { default: () => 0 }).pipe(Schema.fromKey("output_per_mtok"))
}) {}

export const BackendId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
    message: () => "must be 1-64 characters of letters, digits, '.', '_' or '-'"
  })
)

const HttpUrl = Schema.String.pipe(
  Schema.filter((s) => {
    try {
      const u = new URL(s)
      return u.protocol === "http:" || u.protocol === "https:" ? undefined : "must be an http(s) URL"
    } catch {
      return "must be an absolute http(s) URL"
    }
  })
)

export class Backend extends Schema.Class<Backend>("Backend")({
  id: BackendId,
  pool: Schema.NonEmptyTrimmedString,
  baseUrl: HttpUrl.pipe(Schema.propertySignature, Schema.fromKey("base_url")),
  apiKey: Schema.optional(Schema.Redacted(Schema.String)).pipe(Schema.fromKey("api_key")),
  /** Requests allowed in any 60-second sliding window; absent = unlimited (outside emergency). */
  rpm: Schema.optional(PositiveInt),
  timeoutMs: Schema.optionalWith(PositiveInt, { default: () => 120_000 }).pipe(Schema.fromKey("timeout_ms")),
  firstTokenTimeoutMs: Schema.optionalWith(PositiveInt, { default: () => 60_000 }).pipe(
    Schema.fromKey("first_token_timeout_ms")
  ),
  streamIdleTimeoutMs: Schema.optionalWith(PositiveInt, { default: () => 60_000 }).pipe(
    Schema.fromKey("stream_idle_timeout_ms")
  ),
  prefillContinuation: Schema.optionalWith(Schema.Boolean, { default: () => false }).pipe(
    Schema.fromKey("prefill_continuation")
  ),
  /** Top-level fields merged into a continuation request (vLLM: `continue_final_message: true`, …). */
  continuationExtraBody: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })).pipe(
    Schema.fromKey("continuation_extra_body")
  ),
  /** Fields merged into the prefill message itself (Mistral, DeepSeek: `prefix: true`). */
  continuationMessageExtra: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })).pipe(
    Schema.fromKey("continuation_message_extra")
  ),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** Canonical model name -> route. Absent: the backend serves any model under its own name. */
  models: Schema.optional(Schema.Record({ key: Schema.String, value: ModelRoute }))
}) {}

/** The encoded (YAML / JSON) shape of a backend, as operators write it. */
export type BackendInput = Schema.Schema.Encoded<typeof Backend>

/** A backend serves a canonical model when its map names it, or when it has no map at all. */
export const servesModel = (backend: Backend, model: string): boolean =>
  backend.models === undefined || Object.prototype.hasOwnProperty.call(backend.models, model)

/** The model name to send upstream for a canonical model. */
export const upstreamModel = (backend: Backend, model: string): string =>
  backend.models?.[model]?.upstream ?? model

/** Cost in USD of one attempt's tokens at this backend's prices for the model. */
export const costUsd = (backend: Backend, model: string, promptTokens: number, completionTokens: number): number => {
  const route = backend.models?.[model]
  if (route === undefined) return 0
  return (promptTokens * route.inputPerMtok + completionTokens * route.outputPerMtok) / 1_000_000
}

/** Last four characters of a key, the only part of a key Sidecar ever shows. */
export const keyHint = (backend: Backend): string | undefined => {
  if (backend.apiKey === undefined) return undefined
  const k = Redacted.value(backend.apiKey)
  return k.length <= 4 ? "…" : `…${k.slice(-4)}`
}
