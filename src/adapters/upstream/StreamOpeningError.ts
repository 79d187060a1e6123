/**
 * What an event stream's first data event means when it is an error instead of an answer: some
 * servers (and gateways in front of them) answer 200 and report a rate limit or an overload in
 * band. Before the commit point that is a failure like its status twin, so the request fails over.
 */
import { Observation } from "../../domain/FailureClass.js"
import { isObject } from "./JsonValue.js"

/**
 * Whether text (its first characters are enough) starts a JSON object whose first key is `error`:
 * the cheap check made on every stream's first data event, before anything is parsed.
 */
export const opensWithError = (head: string): boolean => head.replace(/\s/g, "").startsWith("{\"error\":")

const RATE_LIMITED = /rate.?limit|too.?many.?requests|quota/i
const SERVER_TROUBLE = /server.?error|overloaded|internal|unavailable|api.?error|timeout|capacity/i

/**
 * The failure a first data event reports, or undefined when it is an answer (or an error about the
 * request itself, which reaches the client as it came). Never throws.
 */
export const openingError = (data: string): Observation | undefined => {
  if (!opensWithError(data.slice(0, 64))) return undefined
  let event: unknown
  try {
    event = JSON.parse(data)
  } catch {
    return undefined
  }
  const error = isObject(event) ? event["error"] : undefined
  if (!isObject(error)) return undefined
  const rawCode = error["code"]
  const code = typeof rawCode === "string" && rawCode !== "" ? rawCode : undefined
  const status = typeof rawCode === "number" ? rawCode : Number(error["status"] ?? NaN)
  const words = `${code ?? ""} ${typeof error["type"] === "string" ? error["type"] : ""}`
  if (status === 429 || RATE_LIMITED.test(words)) return Observation.StreamError({ kind: "rate_limited", code })
  if (status >= 500 || SERVER_TROUBLE.test(words)) return Observation.StreamError({ kind: "server_error", code })
  return undefined
}
