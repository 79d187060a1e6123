// Continuing a broken chat completion stream, below the sockets: the answer tracker, the filter a
// continuation's events go through, the continuation request, and SseTap's inspect hook.
import { Schema } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { AnswerTracker } from "../../../src/adapters/upstream/AnswerTracker.js"
import { ContinuationFilter, type EventVerdict } from "../../../src/adapters/upstream/ContinuationFilter.js"
import {
  continuationRequest,
  type ContinuationRequest,
  forBackend,
  isContinuable,
  isContinuation
} from "../../../src/adapters/upstream/ContinuationRequest.js"
import type { HttpProxyRequest } from "../../../src/adapters/upstream/HttpExchange.js"
import { ResponseBody } from "../../../src/adapters/upstream/ResponseBody.js"
import { SseTap } from "../../../src/adapters/upstream/SseTap.js"
import { Backend } from "../../../src/domain/Backend.js"
import { chunk, sse, usageChunk } from "../../fakes/MockUpstream.js"
import { request } from "./harness.js"

/** A chat completion chunk of one choice with this delta. */
const delta = (d: Record<string, unknown>, choice: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  id: "c1",
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: d, finish_reason: null, ...choice }],
  ...extra
})

const roleChunk = delta({ role: "assistant", content: "" })

const json = (e: unknown) => (typeof e === "string" ? e : JSON.stringify(e))

/** A tracker that has seen these events (objects are JSON-encoded, strings go as they are). */
const tracked = (...events: ReadonlyArray<unknown>): AnswerTracker => {
  const t = new AnswerTracker()
  for (const e of events) t.observe(json(e))
  return t
}

/** A tracker whose (unreported) first segment streamed `text` as one delta per part, then broke. */
const brokenAfter = (...parts: ReadonlyArray<string>): AnswerTracker => {
  const t = tracked(roleChunk, ...parts.map((p) => chunk(p)))
  t.closeSegment(undefined, undefined)
  return t
}

/** The filter continuationRequest would build for this answer: the trailing whitespace it trimmed. */
const filterFor = (answer: AnswerTracker) => new ContinuationFilter(answer, answer.text.slice(answer.text.trimEnd().length))

interface Passed {
  readonly verdicts: ReadonlyArray<EventVerdict>
  /** The data events the client receives, in order. */
  readonly out: ReadonlyArray<string>
}

const pass = (filter: ContinuationFilter, events: ReadonlyArray<unknown>): Passed => {
  const verdicts: Array<EventVerdict> = []
  const out: Array<string> = []
  for (const e of events) {
    const data = json(e)
    const v = filter.inspect(data)
    verdicts.push(v)
    if (v === true) out.push(data)
    else if (typeof v === "string") out.push(v)
  }
  return { verdicts, out }
}

/** The text content the client assembles from data events. */
const contentOf = (events: ReadonlyArray<string>): string =>
  events.map((d) => {
    try {
      const c = (JSON.parse(d) as { choices?: Array<{ delta?: { content?: unknown } }> }).choices?.[0]?.delta?.content
      return typeof c === "string" ? c : ""
    } catch {
      return ""
    }
  }).join("")

describe("AnswerTracker", () => {
  it("accumulates the content of one plain text choice, skipping role, null and empty deltas", () => {
    const t = tracked(
      roleChunk,
      chunk("Hel"),
      delta({ content: null }),
      chunk("lo"),
      delta({}),
      chunk(""),
      chunk(", world", { usage: null }),
      { id: "c1", choices: [] },
      { id: "c1" }
    )
    expect(t.text).toBe("Hello, world")
    expect([t.continuable, t.finished, t.resumable]).toEqual([true, false, true])
  })

  it("accepts a choice without index and null-valued non-text fields", () => {
    const t = tracked(
      { choices: [{ delta: { role: "assistant", content: "a" } }] },
      delta({ content: "b", refusal: null, tool_calls: null, function_call: null, reasoning_content: null, audio: null })
    )
    expect(t.text).toBe("ab")
    expect(t.resumable).toBe(true)
  })

  const notText: ReadonlyArray<[string, unknown]> = [
    ["tool_calls", delta({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }] })],
    ["function_call", delta({ function_call: { name: "f", arguments: "{}" } })],
    ["reasoning_content", delta({ reasoning_content: "thinking" })],
    ["refusal", delta({ refusal: "I can't" })],
    ["audio", delta({ audio: { id: "a1" } })],
    ["a second choice (index 1)", { choices: [{ index: 1, delta: { content: "other" }, finish_reason: null }] }],
    ["an error event", { error: { message: "overloaded", type: "server_error" } }],
    ["choices that are not an array", { choices: { index: 0 } }],
    ["a choice that is not an object", { choices: ["x"] }],
    ["an event that is not an object", [1, 2]],
    ["invalid JSON", "{\"choices\":[{\"delta\":{\"content\":\"tru"]
  ]

  it.each(notText)("is no longer continuable after %s, for good", (_, event) => {
    const t = tracked(roleChunk, chunk("Hi"), event)
    expect(t.continuable).toBe(false)
    expect(t.resumable).toBe(false)
    // Nothing after it changes that, and nothing more is added.
    t.observe(json(chunk(" there")))
    expect(t.continuable).toBe(false)
    expect(t.text).toBe("Hi")
  })

  it("a finish_reason makes the answer whole: continuable but not resumable", () => {
    const t = tracked(chunk("Done"), delta({}, { finish_reason: "stop" }))
    expect([t.continuable, t.finished, t.resumable]).toEqual([true, true, false])
    expect(t.text).toBe("Done")
    const withContent = tracked(delta({ content: "All" }, { finish_reason: "length" }))
    expect(withContent.text).toBe("All")
    expect(withContent.resumable).toBe(false)
  })

  it("observeEvent reads an already parsed event the same way", () => {
    const t = new AnswerTracker()
    t.observeEvent(chunk("a"))
    t.observeEvent(chunk("b"))
    expect(t.text).toBe("ab")
    t.observeEvent("not an object")
    expect(t.continuable).toBe(false)
  })

  it("an unreported segment counts one token per non-empty content delta; prompt = continuation's minus those", () => {
    // Five deltas: role-only, empty and null ones do not count.
    const t = tracked(roleChunk, chunk("a"), chunk(""), delta({ content: null }), chunk("b"), chunk("c"))
    t.closeSegment(undefined, undefined)
    expect(t.earlierTokens).toBe(3)
    expect(t.firstPromptTokens).toBeUndefined()
    expect(t.wholeUsage(110, 5)).toEqual({ prompt: 107, completion: 8 })
    // Never a negative prompt.
    expect(t.wholeUsage(2, 5)).toEqual({ prompt: 0, completion: 8 })
  })

  it("a reported segment counts what its upstream reported, and its prompt is the whole answer's", () => {
    const t = tracked(chunk("a"), chunk("b"))
    t.closeSegment(50, 7)
    expect([t.earlierTokens, t.firstPromptTokens]).toEqual([7, 50])
    expect(t.wholeUsage(200, 4)).toEqual({ prompt: 50, completion: 11 })
    // Reported completion tokens alone (no prompt): deltas are not counted on top.
    const c = tracked(chunk("a"), chunk("b"), chunk("c"))
    c.closeSegment(undefined, 10)
    expect([c.earlierTokens, c.firstPromptTokens]).toEqual([10, undefined])
    expect(c.wholeUsage(30, 1)).toEqual({ prompt: 20, completion: 11 })
  })

  it("segments add up, deltas are counted per segment, and only the first segment's prompt is kept", () => {
    const t = tracked(chunk("a"), chunk("b"))
    t.closeSegment(undefined, undefined) // 2 (estimated)
    t.observe(json(chunk("c")))
    t.observe(json(chunk("d")))
    t.observe(json(chunk("e")))
    t.closeSegment(999, undefined) // a continuation's prompt holds the prefill: not the answer's prompt
    expect([t.earlierTokens, t.firstPromptTokens]).toEqual([5, undefined])
    expect(t.wholeUsage(20, 1)).toEqual({ prompt: 15, completion: 6 })

    const k = tracked(chunk("a"))
    k.closeSegment(40, 3)
    k.observe(json(chunk("b")))
    k.closeSegment(45, 2)
    expect([k.earlierTokens, k.firstPromptTokens]).toEqual([5, 40])
    expect(k.wholeUsage(46, 1)).toEqual({ prompt: 40, completion: 6 })
    // A segment with nothing in it adds nothing.
    k.closeSegment(undefined, undefined)
    expect(k.earlierTokens).toBe(5)
  })
})

describe("ContinuationFilter", () => {
  it("drops the role-only first chunk and any empty leading delta, untracked", () => {
    const answer = brokenAfter("Hello")
    const f = filterFor(answer)
    const p = pass(f, [roleChunk, delta({ role: "assistant" }), delta({ content: null }), chunk(" World")])
    expect(p.verdicts.slice(0, 3)).toEqual([false, false, false])
    expect(contentOf(p.out)).toBe(" World")
    expect(answer.text).toBe("Hello World")
  })

  it("drops the role-only first chunk when it carries usage: null (include_usage, which Sidecar always asks for)", () => {
    // OpenAI sends `"usage": null` on every chunk but the last when stream_options.include_usage
    // is on; such a chunk carries no usage and must be dropped like any other empty leading delta.
    const answer = brokenAfter("Hello")
    const f = filterFor(answer)
    expect(f.inspect(json(delta({ role: "assistant", content: "" }, {}, { usage: null })))).toBe(false)
  })

  it("removes the role key from the first content delta, keeping everything else; later events pass as they are", () => {
    const answer = brokenAfter("Hello")
    const f = filterFor(answer)
    const first = delta({ role: "assistant", content: " World" }, { logprobs: null }, { created: 7, model: "m" })
    const v = f.inspect(json(first))
    expect(typeof v).toBe("string")
    expect(JSON.parse(v as string)).toEqual(delta({ content: " World" }, { logprobs: null }, { created: 7, model: "m" }))
    // Content has flowed: no more seam handling, even for an odd second role announcement.
    const again = json(delta({ role: "assistant", content: "!" }))
    expect(f.inspect(again)).toBe(true)
    expect(f.inspect(json(chunk(" more")))).toBe(true)
    expect(answer.text).toBe("Hello World! more")
  })

  it("keeps a leading finish chunk (the continuation ends at once) and marks the answer finished", () => {
    const answer = brokenAfter("Hello.")
    const f = filterFor(answer)
    const p = pass(f, [roleChunk, delta({}, { finish_reason: "stop" })])
    expect(p.verdicts).toEqual([false, true])
    expect(answer.finished).toBe(true)
    expect(answer.text).toBe("Hello.")
  })

  it("whitespace seam: a continuation that repeats the trimmed whitespace has the repeat removed", () => {
    // Streamed "Hello\n " → prefill "Hello", trimmed "\n ". The model continues "Hello" with "\n World!".
    const answer = brokenAfter("Hello", "\n ")
    const f = filterFor(answer)
    const raw = ["\n World", "!"]
    const p = pass(f, [roleChunk, ...raw.map((c) => chunk(c))])
    expect(contentOf(p.out)).toBe("World!")
    // The client's text is the model's text: the prefill plus what the continuation said.
    expect("Hello\n " + contentOf(p.out)).toBe("Hello" + raw.join(""))
    expect(answer.text).toBe("Hello\n World!")
  })

  it("whitespace seam: a repeat split across deltas is removed piece by piece, an emptied delta dropped", () => {
    const answer = brokenAfter("Hi", "\n\n")
    const f = filterFor(answer)
    const p = pass(f, [roleChunk, chunk("\n"), chunk("\nThere"), chunk("\n")])
    expect(p.verdicts[1]).toBe(false)
    expect(JSON.parse(p.verdicts[2] as string)).toEqual(chunk("There"))
    // After content, a newline is content.
    expect(p.verdicts[3]).toBe(true)
    expect(answer.text).toBe("Hi\n\nThere\n")
  })

  it("whitespace seam: a partial repeat, then other text: only the repeated part is removed", () => {
    const answer = brokenAfter("Hi", "\n\n")
    const f = filterFor(answer)
    const p = pass(f, [chunk("\n"), chunk("There")])
    expect(p.verdicts).toEqual([false, true])
    expect(answer.text).toBe("Hi\n\nThere")
    // "Hi\n\n" + "\nThere" minus the repeated "\n".
    const one = brokenAfter("Hi", "\n\n")
    expect(contentOf(pass(filterFor(one), [chunk("\nTh"), chunk("ere")]).out)).toBe("There")
    expect(one.text).toBe("Hi\n\nThere")
  })

  it("a start that does not repeat the trimmed whitespace keeps everything", () => {
    const answer = brokenAfter("Hello", " ")
    const p = pass(filterFor(answer), [roleChunk, chunk("World"), chunk(" again")])
    expect(p.verdicts.slice(1)).toEqual([true, true])
    expect(answer.text).toBe("Hello World again")

    const other = brokenAfter("Hello", " ")
    const q = pass(filterFor(other), [chunk("\tWorld")])
    expect(contentOf(q.out)).toBe("\tWorld")
    expect(other.text).toBe("Hello \tWorld")

    // Nothing was trimmed: a leading space is the continuation's own.
    const none = brokenAfter("Hello")
    const r = pass(filterFor(none), [chunk(" World")])
    expect(r.verdicts).toEqual([true])
    expect(none.text).toBe("Hello World")
  })

  it("once the seam is past, later deltas that start like the trimmed whitespace are untouched", () => {
    const answer = brokenAfter("A", "\n")
    const p = pass(filterFor(answer), [chunk("B"), chunk("\nC")])
    expect(p.verdicts).toEqual([true, true])
    expect(answer.text).toBe("A\nB\nC")
  })

  it("restates the usage chunk for the whole answer: the first prompt known", () => {
    const answer = tracked(chunk("a"), chunk("b"))
    answer.closeSegment(50, 3)
    const f = filterFor(answer)
    const usage = { ...usageChunk(60, 4), usage: { ...usageChunk(60, 4).usage, prompt_tokens_details: { cached_tokens: 32 } } }
    const v = f.inspect(json(usage))
    expect(typeof v).toBe("string")
    expect(JSON.parse(v as string)).toEqual({
      ...usage,
      usage: { prompt_tokens: 50, completion_tokens: 7, total_tokens: 57, prompt_tokens_details: { cached_tokens: 32 } }
    })
  })

  it("restates the usage chunk for the whole answer: the first prompt unknown, deltas counted", () => {
    const answer = brokenAfter("a", "b")
    const f = filterFor(answer)
    expect(JSON.parse(f.inspect(json(usageChunk(60, 4))) as string).usage).toEqual({
      prompt_tokens: 58,
      completion_tokens: 6,
      total_tokens: 64
    })
    // A null usage, or one without counts, is left alone.
    expect(f.inspect(json(chunk("x", { usage: null })))).toBe(true)
    expect(f.inspect(json({ choices: [], usage: { total_tokens: 3 } }))).toBe(true)
  })

  it("usage riding on the first content delta: restated, role removed, seam removed, all at once", () => {
    const fresh = brokenAfter("Hi", " ")
    const f = filterFor(fresh)
    const v = f.inspect(json(delta({ role: "assistant", content: " there" }, {}, { usage: { prompt_tokens: 10, completion_tokens: 1 } })))
    expect(JSON.parse(v as string)).toEqual(
      delta({ content: "there" }, {}, { usage: { prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 } })
    )
    expect(fresh.text).toBe("Hi there")
  })

  it("a non-JSON event passes through untouched and makes the answer not continuable", () => {
    const answer = brokenAfter("Hello")
    const f = filterFor(answer)
    expect(f.inspect("garbage {")).toBe(true)
    expect(answer.continuable).toBe(false)
    expect(answer.resumable).toBe(false)

    const scalar = brokenAfter("Hello")
    expect(filterFor(scalar).inspect("42")).toBe(true)
    expect(scalar.continuable).toBe(false)
  })

  it("a continuation that turns to tool calls passes through, and the answer is no longer continuable", () => {
    const answer = brokenAfter("Hello")
    const f = filterFor(answer)
    const calls = delta({ tool_calls: [{ index: 0, id: "c", type: "function", function: { name: "f", arguments: "" } }] })
    expect(f.inspect(json(calls))).toBe(true)
    expect(answer.continuable).toBe(false)
    expect(answer.text).toBe("Hello")
  })

  it("the tracker's text stays exactly what the client was handed", () => {
    const answer = brokenAfter("One", " two", "\n")
    const streamed = answer.text
    const p = pass(filterFor(answer), [roleChunk, chunk("\n"), chunk("three"), chunk(" four"), delta({}, { finish_reason: "stop" })])
    expect(answer.text).toBe(streamed + contentOf(p.out))
    expect(answer.text).toBe("One two\nthree four")
    expect(answer.finished).toBe(true)
  })
})

describe("continuationRequest / forBackend", () => {
  const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Say hello" }]
  const chat = (extra: Record<string, unknown> = {}, path?: string): HttpProxyRequest =>
    request({ body: { model: "m", stream: true, messages, ...extra }, ...(path === undefined ? {} : { path }) })

  const bodyWith = (answer: AnswerTracker | undefined): ResponseBody => {
    const body = new ResponseBody(undefined)
    body.answer = answer
    return body
  }

  const backendOf = (fields: Record<string, unknown> = {}): Backend =>
    Schema.decodeUnknownSync(Backend)({ id: "b1", pool: "primary", base_url: "http://x/v1", prefill_continuation: true, ...fields })

  const continued = (original: HttpProxyRequest, answer: AnswerTracker): ContinuationRequest => {
    const r = continuationRequest(original, bodyWith(answer))
    if (r === undefined) throw new Error("expected a continuation request")
    return r
  }

  it("is the original request plus the trimmed text as an assistant prefill, budgets reduced", () => {
    const original = chat({ max_tokens: 100, max_completion_tokens: 10, temperature: 0.5, stream_options: { include_usage: true } })
    const snapshot = structuredClone(original.json)
    const bytes = Buffer.from(original.body)
    const answer = brokenAfter("Hello", "\n ") // 2 tokens, estimated
    const body = bodyWith(answer)
    const r = continuationRequest(original, body)
    if (r === undefined) throw new Error("expected a continuation request")
    expect(r.json).toEqual({
      model: "m",
      stream: true,
      messages: [...messages, { role: "assistant", content: "Hello" }],
      max_tokens: 98,
      max_completion_tokens: 8,
      temperature: 0.5,
      stream_options: { include_usage: true }
    })
    expect(JSON.parse(r.body.toString("utf8"))).toEqual(r.json)
    expect([r.id, r.model, r.method, r.path, r.stream]).toEqual([original.id, original.model, "POST", original.path, true])
    expect(r.headers).toEqual(original.headers)
    expect(r.prefilled).toBe(true)
    expect(r.continuing.body).toBe(body)
    expect(isContinuation(r)).toBe(true)
    expect(isContinuation(original)).toBe(false)
    // The original request is untouched.
    expect(original.json).toEqual(snapshot)
    expect(original.body.equals(bytes)).toBe(true)
    expect((original.json?.["messages"] as Array<unknown>).length).toBe(2)
    // Its filter drops the whitespace that was trimmed, if the continuation repeats it.
    expect([r.continuing.answer, r.continuing.trimmed]).toEqual([answer, "\n "])
    const v = new ContinuationFilter(r.continuing.answer, r.continuing.trimmed).inspect(json(chunk("\n World")))
    expect(JSON.parse(v as string)).toEqual(chunk("World"))
    expect(answer.text).toBe("Hello\n World")
  })

  it("budgets never go below 1, and only numeric budgets present are touched", () => {
    const t = tracked(chunk("x"))
    t.closeSegment(undefined, 150)
    expect(continued(chat({ max_tokens: 100, max_completion_tokens: 150 }), t).json).toMatchObject({
      max_tokens: 1,
      max_completion_tokens: 1
    })
    const r = continued(chat({ max_tokens: null }), brokenAfter("x"))
    expect(r.json?.["max_tokens"]).toBeNull()
    expect(r.json).not.toHaveProperty("max_completion_tokens")
    // Nothing earlier: the budget is unchanged.
    expect(continued(chat({ max_tokens: 100 }), tracked()).json?.["max_tokens"]).toBe(100)
  })

  it("nothing streamed (or only whitespace): no assistant message, the messages as the client sent them", () => {
    const empty = continued(chat(), tracked(roleChunk))
    expect(empty.json?.["messages"]).toEqual(messages)
    expect(empty.prefilled).toBe(false)

    const blank = brokenAfter("\n\n")
    const r = continued(chat(), blank)
    expect(r.json?.["messages"]).toEqual(messages)
    expect(r.prefilled).toBe(false)
    // The trimmed whitespace is still what the filter looks for.
    expect(contentOf(pass(new ContinuationFilter(r.continuing.answer, r.continuing.trimmed), [chunk("\n\nHello")]).out)).toBe("Hello")
    expect(blank.text).toBe("\n\nHello")
  })

  it("is undefined when the answer cannot be continued", () => {
    const finished = tracked(chunk("a"), delta({}, { finish_reason: "stop" }))
    const tools = tracked(delta({ tool_calls: [{ index: 0 }] }))
    const ok = () => brokenAfter("a")
    expect(continuationRequest(chat(), bodyWith(undefined))).toBeUndefined() // not tracked
    expect(continuationRequest(chat(), bodyWith(tools))).toBeUndefined() // not continuable
    expect(continuationRequest(chat(), bodyWith(finished))).toBeUndefined() // finished
    expect(continuationRequest(chat({ stream: false }), bodyWith(ok()))).toBeUndefined() // not a stream
    expect(continuationRequest(chat({}, "/v1/completions"), bodyWith(ok()))).toBeUndefined() // not a chat completion
    expect(continuationRequest(chat({ n: 2 }), bodyWith(ok()))).toBeUndefined()
    expect(continuationRequest(chat({ messages: "hi" }), bodyWith(ok()))).toBeUndefined()
    expect(continuationRequest(request({ body: "raw text" }), bodyWith(ok()))).toBeUndefined()
    // n: 1 and n: null are one choice.
    expect(continuationRequest(chat({ n: 1 }), bodyWith(ok()))).toBeDefined()
    expect(continuationRequest(chat({ n: null }), bodyWith(ok()))).toBeDefined()
  })

  it("isContinuable: a streamed chat completion with messages and one choice", () => {
    expect(isContinuable(chat())).toBe(true)
    expect(isContinuable(chat({}, "/v1/chat/completions?api-version=1"))).toBe(true)
    expect(isContinuable(chat({ stream: false }))).toBe(false)
    expect(isContinuable(chat({}, "/v1/chat/completions/x"))).toBe(false)
    expect(isContinuable(chat({ n: 3 }))).toBe(false)
    expect(isContinuable(chat({ messages: undefined }))).toBe(false)
  })

  it("forBackend merges continuation_extra_body, leaving the request it was given untouched", () => {
    const r = continued(chat({ max_tokens: 50 }), brokenAfter("Hello"))
    const before = structuredClone(r.json)
    const sent = forBackend(r, backendOf({ continuation_extra_body: { continue_final_message: true, add_generation_prompt: false } }))
    expect(sent.json).toEqual({ ...before, continue_final_message: true, add_generation_prompt: false })
    expect(JSON.parse(sent.body.toString("utf8"))).toEqual(sent.json)
    expect(sent.continuing).toBe(r.continuing)
    expect(sent.prefilled).toBe(true)
    expect(isContinuation(sent)).toBe(true)
    expect(r.json).toEqual(before)
    expect(JSON.parse(r.body.toString("utf8"))).toEqual(before)
  })

  it("forBackend: no extra (absent or empty) sends the continuation as it is", () => {
    const r = continued(chat(), brokenAfter("Hello"))
    expect(forBackend(r, backendOf())).toBe(r)
    expect(forBackend(r, backendOf({ continuation_extra_body: {} }))).toBe(r)
    expect(forBackend(r, backendOf({ continuation_extra_body: {}, continuation_message_extra: {} }))).toBe(r)
  })

  it("forBackend merges continuation_message_extra into the prefill message only", () => {
    const r = continued(chat(), brokenAfter("Hello"))
    const sent = forBackend(r, backendOf({ continuation_message_extra: { prefix: true } }))
    expect(sent.json?.["messages"]).toEqual([...messages, { role: "assistant", content: "Hello", prefix: true }])
    expect(r.json?.["messages"]).toEqual([...messages, { role: "assistant", content: "Hello" }])
    const both = forBackend(r, backendOf({ continuation_message_extra: { prefix: true }, continuation_extra_body: { top_k: 1 } }))
    expect(both.json).toMatchObject({ top_k: 1, messages: [...messages, { role: "assistant", content: "Hello", prefix: true }] })
    // No prefill message: the client's last message is not touched.
    const fresh = continued(chat(), tracked())
    expect(forBackend(fresh, backendOf({ continuation_message_extra: { prefix: true } })).json?.["messages"]).toEqual(messages)
  })
})

describe("SseTap with an inspector", () => {
  /** Feeds `chunks`, returns what the client receives (the flushed tail included). */
  const run = (tap: SseTap, chunks: ReadonlyArray<string>) =>
    chunks.map((c) => tap.feed(Buffer.from(c))?.toString() ?? "").join("") + (tap.flush()?.toString() ?? "")

  const recorder = (verdict: (data: string) => boolean | string = () => true) => {
    const seen: Array<string> = []
    return { seen, inspect: (data: string) => (seen.push(data), verdict(data)) }
  }

  it("keep: every data event is shown once, bytes unchanged; comments and [DONE] are not shown", () => {
    const r = recorder()
    const text = ": ping\n\n" + sse(chunk("a")) + "event: x\nid: 2\ndata: {\"b\":1}\n\n" + sse(chunk("c")) + sse("[DONE]")
    const tap = new SseTap(false, r.inspect)
    expect(run(tap, [text])).toBe(text)
    expect(r.seen).toEqual([JSON.stringify(chunk("a")), "{\"b\":1}", JSON.stringify(chunk("c"))])
    expect(tap.done).toBe(true)
    expect(tap.events).toBe(5)
  })

  it("drop: the event is removed, everything around it byte for byte", () => {
    const r = recorder((d) => !d.includes("drop"))
    const keep1 = sse(chunk("a"))
    const keep2 = ": hi\n\n" + sse(chunk("c"))
    const text = keep1 + "id: 9\ndata: {\"drop\":1}\n\n" + keep2 + sse("[DONE]")
    const tap = new SseTap(false, r.inspect)
    expect(run(tap, [text])).toBe(keep1 + keep2 + sse("[DONE]"))
    expect(r.seen).toHaveLength(3)
    expect(tap.sawData).toBe(true)
  })

  it("replace: the client gets `data: <replacement>\\n\\n` exactly once, in the event's place", () => {
    const r = recorder((d) => (d.includes("\"b\"") ? "{\"B\":2}" : true))
    const a = sse(chunk("a"))
    const c = sse(chunk("c"))
    const tap = new SseTap(false, r.inspect)
    const out = run(tap, [a + "event: m\ndata: {\"b\":1}\n\n" + c + sse("[DONE]")])
    expect(out).toBe(a + "data: {\"B\":2}\n\n" + c + sse("[DONE]"))
    expect(out.split("data: {\"B\":2}\n\n")).toHaveLength(2)
  })

  it("a multi-line data event is shown joined, and replaced whole", () => {
    const r = recorder(() => "one")
    const tap = new SseTap(false, r.inspect)
    expect(run(tap, ["data: {\"a\":\ndata: 1}\n\n"])).toBe("data: one\n\n")
    expect(r.seen).toEqual(["{\"a\":\n1}"])
  })

  it("the usage chunk dropped by dropUsageChunk is never shown; the inspector runs after usage is read", () => {
    const text = sse(chunk("a", { usage: null })) + sse(usageChunk(7, 3)) + sse("[DONE]")
    const dropping = recorder()
    const tap = new SseTap(true, dropping.inspect)
    expect(run(tap, [text])).toBe(sse(chunk("a", { usage: null })) + sse("[DONE]"))
    expect(dropping.seen).toEqual([JSON.stringify(chunk("a", { usage: null }))])
    expect([tap.promptTokens, tap.completionTokens]).toEqual([7, 3])

    let tokensWhenShown: Array<number | undefined> = []
    const keeping = new SseTap(false, (data) => {
      if (data.includes("\"usage\":{")) tokensWhenShown = [keeping.promptTokens, keeping.completionTokens]
      return data.includes("\"usage\":{") ? "{\"restated\":true}" : true
    })
    expect(run(keeping, [text])).toBe(sse(chunk("a", { usage: null })) + "data: {\"restated\":true}\n\n" + sse("[DONE]"))
    expect(tokensWhenShown).toEqual([7, 3])
    // The tap's own counts are the upstream's, whatever the inspector made of the event.
    expect([keeping.promptTokens, keeping.completionTokens]).toEqual([7, 3])
  })

  it("events split across chunks at any two boundaries are each inspected exactly once", () => {
    const events = [
      ": open\n\n",
      "data: {\"drop\":true}\n\n",
      "event: e\rdata: {\"swap\":1}\r\r",
      sse(usageChunk(5, 6)),
      "data: {\"keep\":1}\r\n\r\n",
      "data: {\"x\":\ndata: 2}\r\n\r\n",
      sse("[DONE]")
    ]
    // (CRLF only on kept events followed by kept events: see the next test for the others.)
    const text = events.join("")
    const verdict = (d: string) => (d.includes("drop") ? false : d.includes("swap") ? "{\"swapped\":1}" : true)
    const expected = ": open\n\n" + "data: {\"swapped\":1}\n\n" + "data: {\"keep\":1}\r\n\r\n" + "data: {\"x\":\ndata: 2}\r\n\r\n" +
      sse("[DONE]")
    const expectedSeen = ["{\"drop\":true}", "{\"swap\":1}", "{\"keep\":1}", "{\"x\":\n2}"]
    for (let i = 1; i < text.length; i++) {
      for (let j = i; j < text.length; j++) {
        const r = recorder(verdict)
        const tap = new SseTap(true, r.inspect)
        const out = run(tap, [text.slice(0, i), text.slice(i, j), text.slice(j)])
        if (out !== expected || r.seen.length !== expectedSeen.length) {
          expect({ i, j, out, seen: r.seen }).toEqual({ i, j, out: expected, seen: expectedSeen })
        }
        expect(tap.done).toBe(true)
      }
    }
    // And byte by byte.
    const r = recorder(verdict)
    const tap = new SseTap(true, r.inspect)
    expect(run(tap, [...text])).toBe(expected)
    expect(r.seen).toEqual(expectedSeen)
    expect([tap.promptTokens, tap.completionTokens]).toEqual([5, 6])
  })

  it("a CRLF event ending split between its CR and LF: the LF stays with its event, dropped or replaced or kept", () => {
    // The LF opening the second chunk ends the first event: it goes (or not) with that event, never
    // with the next one.
    const b = "data: {\"b\":1}\r\n\r\n"
    const c = "data: {\"c\":1}\r\n\r\n"
    const replaceB = (d: string) => (d === "{\"b\":1}" ? "{\"B\":1}" : true)
    const replaceC = (d: string) => (d === "{\"c\":1}" ? "{\"C\":1}" : true)
    const usage = `data: ${JSON.stringify(usageChunk(1, 2))}\r\n\r\n`
    const cases: ReadonlyArray<[string, SseTap, string, string, string]> = [
      ["first replaced", new SseTap(false, replaceB), b, c, "data: {\"B\":1}\n\n" + c],
      ["first dropped", new SseTap(false, (d) => d !== "{\"b\":1}"), b, c, c],
      ["first is the dropped usage chunk", new SseTap(true), usage, c, c],
      ["second replaced", new SseTap(false, replaceC), b, c, b + "data: {\"C\":1}\n\n"],
      ["second dropped", new SseTap(false, (d) => d !== "{\"c\":1}"), b, c, b],
      ["second is the dropped usage chunk", new SseTap(true), b, usage, b]
    ]
    const results = cases.map(([name, tap, first, second]) => {
      const cut = first.length - 1 // between the final CR and LF
      return [name, run(tap, [first.slice(0, cut), first.slice(cut) + second])]
    })
    expect(results).toEqual(cases.map(([name, , , , expected]) => [name, expected]))
  })

  it("with a ContinuationFilter: a continuation's stream, split anywhere, reaches the client seamless", () => {
    const raw = sse(roleChunk) + sse(chunk("\n")) + sse(chunk(" World")) + sse(chunk("!")) +
      sse(delta({}, { finish_reason: "stop" })) + sse(usageChunk(30, 3)) + sse("[DONE]")
    const expected = sse(chunk("World")) + sse(chunk("!")) + sse(delta({}, { finish_reason: "stop" })) +
      `data: ${JSON.stringify({ ...usageChunk(28, 5), usage: { prompt_tokens: 28, completion_tokens: 5, total_tokens: 33 } })}\n\n` +
      sse("[DONE]")
    for (let i = 0; i <= raw.length; i += 7) {
      const answer = brokenAfter("Hello", "\n ") // 2 tokens, estimated; trimmed "\n "
      const filter = filterFor(answer)
      const tap = new SseTap(false, (d) => filter.inspect(d))
      const out = run(tap, [raw.slice(0, i), raw.slice(i)])
      expect(out).toBe(expected)
      expect(answer.text).toBe("Hello\n World!")
      expect([tap.promptTokens, tap.completionTokens]).toEqual([30, 3])
    }
  })
})
