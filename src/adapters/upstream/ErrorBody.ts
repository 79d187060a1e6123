/**
 * Reads the error code and message out of an upstream's (small, buffered) error body, for the
 * classifier. Tolerant by design: anything it cannot read is simply absent.
 */
import { isObject } from "./JsonValue.js"

export interface ErrorDetails {
  /** A string `code` (OpenAI: `context_length_exceeded`); numeric codes are HTTP statuses, ignored. */
  readonly code: string | undefined
  readonly message: string | undefined
}

const NONE: ErrorDetails = { code: undefined, message: undefined }
/** Messages are for classification and logs' error class only; a runaway message is cut here. */
const MAX_MESSAGE = 1000

const str = (u: unknown): string | undefined => (typeof u === "string" && u !== "" ? u : undefined)

const fromObject = (o: Record<string, unknown>): ErrorDetails => {
  const err = o["error"]
  if (isObject(err)) {
    return { code: str(err["code"]) ?? str(o["code"]), message: str(err["message"]) ?? str(o["message"]) }
  }
  return { code: str(o["code"]), message: str(err) ?? str(o["message"]) ?? str(o["detail"]) }
}

/**
 * Shapes understood: `{"error":{"code","message","type"}}` (OpenAI), top-level `code`/`message`
 * (vLLM, some gateways), `{"error":"text"}`, and a one-element array of those (Gemini-compatible).
 * Invariant: never throws.
 */
export const parseErrorBody = (body: Buffer): ErrorDetails => {
  let i = 0
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++
  if (body[i] !== 0x7b /* { */ && body[i] !== 0x5b /* [ */) return NONE
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString("utf8"))
  } catch {
    return NONE
  }
  if (Array.isArray(parsed)) parsed = parsed[0]
  if (!isObject(parsed)) return NONE
  const d = fromObject(parsed)
  return d.message !== undefined && d.message.length > MAX_MESSAGE ? { code: d.code, message: d.message.slice(0, MAX_MESSAGE) } : d
}
