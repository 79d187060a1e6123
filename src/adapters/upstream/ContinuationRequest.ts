/**
 * The request that continues a broken answer (SPEC §1 "After the commit point"): the client's own
 * request, plus the text streamed so far as a final assistant message, for a backend that declared
 * `prefill_continuation`, with its `continuation_extra_body` merged in.
 */
import type { Backend } from "../../domain/Backend.js"
import type { HttpProxyRequest } from "./HttpExchange.js"
import { isChatCompletionsPath } from "./RequestBody.js"
import type { ResponseBody } from "./ResponseBody.js"
import type { AnswerTracker } from "./AnswerTracker.js"

/** A continuation attempt: the client's body it continues (with its answer so far), and the prefill's trimmed whitespace. */
export interface Continuing {
  readonly body: ResponseBody
  readonly answer: AnswerTracker
  readonly trimmed: string
}

export interface ContinuationRequest extends HttpProxyRequest {
  readonly continuing: Continuing
  /** The last message is the assistant prefill (absent when nothing had been streamed yet). */
  readonly prefilled: boolean
}

export const isContinuation = (r: HttpProxyRequest): r is ContinuationRequest => "continuing" in r

/** The answer budgets a continuation inherits, minus what the answer already used. */
const BUDGETS = ["max_tokens", "max_completion_tokens"] as const

/** Whether a request's answer could be continued at all: a streamed chat completion with one choice. */
export const isContinuable = (r: HttpProxyRequest): boolean => {
  const n = r.json?.["n"]
  return r.stream && isChatCompletionsPath(r.path) && Array.isArray(r.json?.["messages"]) &&
    (n === undefined || n === null || n === 1)
}

const withJson = <R extends HttpProxyRequest>(r: R, json: Record<string, unknown>): R => ({
  ...r,
  json,
  body: Buffer.from(JSON.stringify(json))
})

/**
 * The continuation of `original`'s answer as its `body` has delivered it, or undefined when that
 * answer cannot be continued (not tracked, not plain text, already finished). Trailing whitespace
 * is cut from the prefill (some servers refuse it; the filter drops it if the continuation repeats it).
 */
export const continuationRequest = (original: HttpProxyRequest, body: ResponseBody): ContinuationRequest | undefined => {
  const answer = body.answer
  const json = original.json
  if (answer === undefined || !answer.resumable || json === undefined || !isContinuable(original)) return undefined
  const prefill = answer.text.trimEnd()
  const messages = json["messages"] as ReadonlyArray<unknown>
  const next: Record<string, unknown> = {
    ...json,
    // Nothing streamed yet: ask again, with no empty assistant message for a server to trip on.
    messages: prefill === "" ? messages : [...messages, { role: "assistant", content: prefill }]
  }
  for (const key of BUDGETS) {
    const budget = json[key]
    if (typeof budget === "number") next[key] = Math.max(1, budget - answer.earlierTokens)
  }
  return {
    ...withJson(original, next),
    continuing: { body, answer, trimmed: answer.text.slice(prefill.length) },
    prefilled: prefill !== ""
  }
}

const isEmpty = (o: Readonly<Record<string, unknown>> | undefined): o is undefined =>
  o === undefined || Object.keys(o).length === 0

/**
 * The continuation as `backend` receives it: its `continuation_extra_body` merged into the body,
 * its `continuation_message_extra` into the prefill message.
 */
export const forBackend = (request: ContinuationRequest, backend: Backend): ContinuationRequest => {
  const extra = backend.continuationExtraBody
  const messageExtra = request.prefilled ? backend.continuationMessageExtra : undefined
  if (isEmpty(extra) && isEmpty(messageExtra)) return request
  const json: Record<string, unknown> = { ...request.json, ...extra }
  if (!isEmpty(messageExtra)) {
    const messages = json["messages"] as ReadonlyArray<Record<string, unknown>>
    json["messages"] = [...messages.slice(0, -1), { ...messages[messages.length - 1], ...messageExtra }]
  }
  return withJson(request, json)
}
