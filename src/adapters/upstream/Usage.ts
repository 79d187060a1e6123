/**
 * Token usage out of an upstream's JSON: a parsed chunk's `usage` (chat/completions/embeddings:
 * `prompt_tokens`/`completion_tokens`; Responses API: `response.usage` with `input_`/`output_tokens`),
 * or a whole JSON body, read cheaply by parsing only its `"usage"` object.
 */
import { isObject } from "./JsonValue.js"

export interface Usage {
  readonly promptTokens: number | undefined
  readonly completionTokens: number | undefined
}

const count = (u: unknown): number | undefined => (typeof u === "number" && Number.isFinite(u) && u >= 0 ? u : undefined)

/** The usage of a `usage` object itself. */
export const usageOf = (usage: unknown): Usage | undefined => {
  if (!isObject(usage)) return undefined
  const promptTokens = count(usage["prompt_tokens"]) ?? count(usage["input_tokens"])
  const completionTokens = count(usage["completion_tokens"]) ?? count(usage["output_tokens"])
  return promptTokens === undefined && completionTokens === undefined ? undefined : { promptTokens, completionTokens }
}

/** The usage a parsed JSON object carries at top level, or in `response.usage` (Responses API). */
export const usageIn = (obj: unknown): Usage | undefined => {
  if (!isObject(obj)) return undefined
  const top = usageOf(obj["usage"])
  if (top !== undefined) return top
  const response = obj["response"]
  return isObject(response) ? usageOf(response["usage"]) : undefined
}

const USAGE_KEY = Buffer.from("\"usage\"")

const isSpace = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** Where the `{` of `"usage": {` opens, for the key found at `at`; -1 when the value is not an object. */
export const usageObjectStart = (buf: Buffer, at: number, end: number): number => {
  if (at > 0 && buf[at - 1] === 0x5c /* \ : inside a string */) return -1
  let i = at + USAGE_KEY.length
  while (i < end && isSpace(buf[i])) i++
  if (buf[i] !== 0x3a /* : */) return -1
  i++
  while (i < end && isSpace(buf[i])) i++
  return i < end && buf[i] === 0x7b /* { */ ? i : -1
}

/** The index just past the `}` closing the object opened at `start`; -1 when it does not close. */
const objectEnd = (buf: Buffer, start: number, end: number): number => {
  let depth = 0
  let inString = false
  for (let i = start; i < end; i++) {
    const c = buf[i]
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x7b || c === 0x5b) {
      depth++
    } else if ((c === 0x7d || c === 0x5d) && --depth === 0) {
      return i + 1
    }
  }
  return -1
}

/** Where the next `"usage"` key is in `buf` from `from` on; -1 when there is none. */
export const findUsageKey = (buf: Buffer, from: number): number => buf.indexOf(USAGE_KEY, from)

/**
 * The usage of a whole JSON response body, parsing only the last `"usage": {…}` object in it (the
 * top-level one: OpenAI-compatible servers write it last). Invariant: never throws.
 */
export const usageFromJsonBody = (body: Buffer): Usage | undefined => {
  let at = body.lastIndexOf(USAGE_KEY)
  while (at >= 0) {
    const start = usageObjectStart(body, at, body.length)
    if (start >= 0) {
      const end = objectEnd(body, start, body.length)
      if (end < 0) return undefined
      try {
        return usageOf(JSON.parse(body.toString("utf8", start, end)))
      } catch {
        return undefined
      }
    }
    at = at === 0 ? -1 : body.lastIndexOf(USAGE_KEY, at - 1)
  }
  return undefined
}
