/**
 * The request body sent upstream (SPEC §1 step 1, §3): the client's bytes unchanged, unless the
 * backend maps the model name or a streamed chat completion needs `stream_options.include_usage`.
 */
import type { HttpProxyRequest } from "./HttpExchange.js"
import { isObject } from "./JsonValue.js"

export interface UpstreamBody {
  /** The bytes to send: the client's own buffer when nothing had to change. */
  readonly bytes: Buffer
  /**
   * The proxy asked for the usage chunk on the client's behalf (a streamed chat completion whose
   * client did not set `stream_options.include_usage`): that chunk must not reach the client.
   */
  readonly dropUsageChunk: boolean
}

/** `/v1/chat/completions`, with or without a query string or trailing slash. */
export const isChatCompletionsPath = (path: string): boolean => {
  if (!path.startsWith("/v1/chat/completions")) return false
  const next = path.charCodeAt(20)
  return Number.isNaN(next) || next === 63 /* ? */ || (next === 47 /* / */ && path.length === 21)
}

const USAGE_OPTION = Buffer.from(`"stream_options":{"include_usage":true},`)

/**
 * The client's bytes with `"stream_options":{"include_usage":true},` right after the object's
 * opening brace: no re-serialization of a body that may hold a long conversation. Only for an
 * object with no `stream_options` key at all (a duplicate key would be ambiguous) and at least
 * one other key (`stream`), so the comma is valid.
 */
const withUsageOption = (body: Buffer): Buffer | undefined => {
  let i = 0
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++
  if (body[i] !== 0x7b) return undefined
  return Buffer.concat([body.subarray(0, i + 1), USAGE_OPTION, body.subarray(i + 1)], body.length + USAGE_OPTION.length)
}

/**
 * Invariants: the JSON is re-serialized only when a field changed in a way bytes cannot carry
 * (`model` rewritten to `upstreamModel` when it differs from the canonical model; an existing
 * `stream_options` given `include_usage: true`); a streamed chat completion without
 * `stream_options` gets it spliced into the client's bytes; every other byte is the client's.
 */
export const upstreamBody = (request: HttpProxyRequest, upstreamModel: string): UpstreamBody => {
  const json = request.json
  if (json === undefined) return { bytes: request.body, dropUsageChunk: false }
  let changed: Record<string, unknown> | undefined
  if (upstreamModel !== request.model && json["model"] !== upstreamModel) {
    changed = { ...json, model: upstreamModel }
  }
  let dropUsageChunk = false
  if (json["stream"] === true && isChatCompletionsPath(request.path)) {
    const options = json["stream_options"]
    if (!(isObject(options) && options["include_usage"] === true)) {
      dropUsageChunk = true
      if (changed === undefined && !("stream_options" in json)) {
        const spliced = withUsageOption(request.body)
        if (spliced !== undefined) return { bytes: spliced, dropUsageChunk }
      }
      changed ??= { ...json }
      changed["stream_options"] = isObject(options) ? { ...options, include_usage: true } : { include_usage: true }
    }
  }
  return changed === undefined
    ? { bytes: request.body, dropUsageChunk }
    : { bytes: Buffer.from(JSON.stringify(changed)), dropUsageChunk }
}
