/**
 * What a successful upstream response's body is, from its status and headers alone: an event
 * stream (committed at its first data event, scanned for usage), a JSON body kept for its usage,
 * or other bytes passed through as they are. Encoded bodies are never parsed.
 */
import { headerValue, type ParsedHeaders } from "./ForwardHeaders.js"

export type ResponseKind = "stream" | "json" | "other"

/** A JSON body is kept (by reference) for usage extraction up to this size. */
export const JSON_USAGE_CAP = 1024 * 1024

const isEventStream = (type: string) => type.length >= 17 && type.slice(0, 17).toLowerCase() === "text/event-stream"
const isEncoded = (encoding: string | undefined) =>
  encoding !== undefined && encoding !== "" && encoding.toLowerCase() !== "identity"

/** `head`: the request was a HEAD (no body follows, whatever the headers say). */
export const responseKind = (status: number, headers: ParsedHeaders, head: boolean): ResponseKind => {
  if (isEncoded(headerValue(headers, "content-encoding"))) return "other"
  const type = headerValue(headers, "content-type") ?? ""
  if (!head && status !== 204 && isEventStream(type)) return "stream"
  return type.includes("json") && !(Number(headerValue(headers, "content-length")) > JSON_USAGE_CAP) ? "json" : "other"
}
