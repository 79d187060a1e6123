// SPEC §1 "After the commit point", end to end: a committed stream that breaks (cut, reset, stall)
// is continued by a prefill-capable backend, or ends with the in-band error event of the original
// break. Each test checks what the client received, what every upstream saw, the ledger, the
// metrics and log lines, and that Sidecar serves a plain request right afterwards.
import { afterEach, describe, expect, it } from "@effect/vitest"
import type { MockUpstream } from "../../fakes/MockUpstream.js"
import { backend, chunk, type Faulty, Rig, sse, usageChunk } from "./harness.js"

let rig = new Rig()
afterEach(async () => {
  await rig.close()
  rig = new Rig()
})

const USER = { role: "user", content: "Tell me a story" }
const VLLM = { continue_final_message: true, add_generation_prompt: false }

/** A leading role announcement, as OpenAI-compatible servers send it. */
const roleChunk = () => ({
  id: "c1",
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]
})
const finishChunk = () => ({
  id: "c1",
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: {}, finish_reason: "stop" }]
})
const toolChunk = (delta: Record<string, unknown>) => ({
  id: "c1",
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta, finish_reason: null }]
})

/** The JSON body of the `i`-th request `m` received. */
const bodyOf = (m: MockUpstream, i: number) => JSON.parse(m.requests[i]!.body) as Record<string, unknown>
/** The last message of a request body, i.e. the prefill when there is one. */
const lastMessage = (body: Record<string, unknown>) => {
  const messages = body["messages"] as Array<Record<string, unknown>>
  return messages[messages.length - 1]
}
const prefills = (m: MockUpstream) => m.requests.filter((_, i) => lastMessage(bodyOf(m, i))?.["role"] === "assistant").length

/** The break / continuation log lines, reduced to their fields. */
const streamLogs = (f: Faulty) =>
  f.logs().filter((l) => String(l["msg"]).startsWith("stream_")).map((l) => {
    const { time: _time, ...rest } = l
    return rest
  })

const completed = (f: Faulty) => f.logs().filter((l) => l["msg"] === "request_completed")

const rowsOf = (f: Faulty, ...cols: Array<string>) => f.rows().map((r) => cols.map((c) => r[c]))

/**
 * The break and continuation counters that grew since `before`, by how much (Effect's metrics are
 * process-wide: every Sidecar of this file adds to the same counters).
 */
const streamCounters = async (f: Faulty, before: Map<string, number>) => {
  const grown: Record<string, number> = {}
  for (const [k, v] of await f.metrics()) {
    if (!k.startsWith("sidecar_stream_breaks_total") && !k.startsWith("sidecar_stream_continuations_total")) continue
    const d = v - (before.get(k) ?? 0)
    if (d !== 0) grown[k] = d
  }
  return grown
}

/** Event payloads that announce a role / carry a usage object. */
const roles = (events: ReadonlyArray<unknown>) =>
  events.filter((e) => JSON.stringify(e).includes("\"role\":\"assistant\"")).length
const usages = (events: ReadonlyArray<unknown>) => events.filter((e) => JSON.stringify(e).includes("\"usage\"")).length

/**
 * How most tests end: a plain request is still served, then the counters that grew since
 * `before`, and (once `rig.close()` has drained the ledger) the usage rows' `cols`.
 */
const afterwards = async (f: Faulty, m: MockUpstream, before: Map<string, number>, ...cols: Array<string>) => {
  await f.stillServes(m)
  const counters = await streamCounters(f, before)
  await rig.close()
  return { counters, rows: rowsOf(f, ...cols) }
}

const waitFor = async (what: string, ok: () => boolean, timeoutMs = 5000) => {
  const until = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe("a committed stream that breaks", () => {
  it("cut → continued on the same backend: one whole answer, prefill body, usage restated, ledger, metrics, logs", async () => {
    const m = await rig.upstream()
    m.reply(
      {
        kind: "sse",
        events: [sse(roleChunk()), sse(chunk("Hello")), sse(chunk(" wor")), sse(chunk("ld, "))],
        cutAfter: 4,
        end: "cut",
        gapMs: 5
      },
      {
        kind: "sse",
        events: [sse(roleChunk()), sse(chunk(" how")), sse(chunk(" are you?")), sse(finishChunk()), sse(usageChunk(20, 2))],
        gapMs: 5
      }
    )
    const f = await rig.sidecar({
      backends: [backend("a", m, { prefill_continuation: true, continuation_extra_body: VLLM, models: { m1: { upstream: "up-a" } } })]
    })
    const before = await f.metrics()
    const a = await f.chat({ max_tokens: 100, stream_options: { include_usage: true } })
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "Hello world, how are you?", true, undefined])
    // One role announcement (the continuation's is dropped), one usage chunk: the whole answer's.
    expect(roles(a.events)).toBe(1)
    expect(usages(a.events)).toBe(1)
    expect(a.usage).toEqual({ prompt_tokens: 20 - 3, completion_tokens: 3 + 2, total_tokens: 22 })

    expect(m.requests).toHaveLength(2)
    const first = bodyOf(m, 0)
    expect(first).toEqual({ model: "up-a", messages: [USER], stream: true, max_tokens: 100, stream_options: { include_usage: true } })
    expect(bodyOf(m, 1)).toEqual({
      model: "up-a",
      messages: [USER, { role: "assistant", content: "Hello world," }],
      stream: true,
      max_tokens: 97,
      stream_options: { include_usage: true },
      continue_final_message: true,
      add_generation_prompt: false
    })
    expect(m.requests[1]!.headers["authorization"]).toBe("Bearer sk-a-secret")

    await f.stillServes(m)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
    const requestId = a.headers.get("x-request-id")
    expect(streamLogs(f)).toEqual([
      { level: "warn", msg: "stream_break", backend: "a", pool: "primary", kind: "cut", request_id: requestId },
      { level: "info", msg: "stream_continuation", outcome: "continued", kind: "cut", backend: "a", tries: 1, request_id: requestId }
    ])
    expect(completed(f).map((l) => [l["status"], l["attempts"], l["backend"]])).toEqual([[200, 2, "a"], [200, 1, "a"]])
    await rig.close()
    expect(rowsOf(f, "request_id", "backend", "upstream_model", "phase", "attempt", "status", "stream_end", "prompt_tokens", "completion_tokens"))
      .toEqual([
        [requestId, "a", "up-a", "direct", 1, 200, "cut", null, null],
        [requestId, "a", "up-a", "direct", 2, 200, "complete", 20, 2],
        [expect.any(String), "a", "up-a", "direct", 1, 200, "complete", null, null]
      ])
  })

  it("cut on a backend without prefill → continued by a capable backend of the fallback pool; no prefill to undeclared backends", async () => {
    const ma = await rig.upstream()
    const mb = await rig.upstream()
    const mc = await rig.upstream()
    ma.reply({ kind: "sse", events: [sse(chunk("The cat")), sse(chunk(" sat"))], cutAfter: 2, end: "cut", gapMs: 5 })
    mb.reply({ kind: "sse", events: [sse(roleChunk()), sse(chunk(" on the mat.")), sse(usageChunk(15, 4))], gapMs: 5 })
    const f = await rig.sidecar({
      routing: { pools: ["primary", "fallback"] },
      backends: [
        backend("a", ma, { models: { m1: { upstream: "up-a" } } }),
        backend("c", mc, { pool: "fallback" }),
        backend("b", mb, {
          pool: "fallback",
          prefill_continuation: true,
          continuation_message_extra: { prefix: true },
          models: { m1: { upstream: "up-b" } }
        })
      ]
    })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "The cat sat on the mat.", true, undefined])
    expect(a.headers.get("x-sidecar-backend")).toBe("a")
    expect(usages(a.events)).toBe(0)

    expect([ma.requests.length, mb.requests.length, mc.requests.length]).toEqual([1, 1, 0])
    expect(prefills(ma)).toBe(0)
    expect(bodyOf(mb, 0)).toEqual({
      model: "up-b",
      messages: [USER, { role: "assistant", content: "The cat sat", prefix: true }],
      stream: true,
      stream_options: { include_usage: true }
    })
    expect(mb.requests[0]!.headers["authorization"]).toBe("Bearer sk-b-secret")

    await f.stillServes(ma)
    expect([ma.requests.length, mb.requests.length, mc.requests.length]).toEqual([2, 1, 0])
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
    expect(streamLogs(f).map((l) => [l["msg"], l["backend"], l["outcome"], l["tries"]])).toEqual([
      ["stream_break", "a", undefined, undefined],
      ["stream_continuation", "b", "continued", 1]
    ])
    await rig.close()
    expect(rowsOf(f, "backend", "pool", "upstream_model", "attempt", "stream_end", "prompt_tokens", "completion_tokens")).toEqual([
      ["a", "primary", "up-a", 1, "cut", null, null],
      ["b", "fallback", "up-b", 2, "complete", 15, 4],
      ["a", "primary", "up-a", 1, "complete", null, null]
    ])
  })

  it("cut with no capable backend → the partial text, then the stream_cut error event, no [DONE] (no_backend)", async () => {
    const m = await rig.upstream()
    m.reply({ kind: "sse", events: [sse(chunk("Partial")), sse(chunk(" answer"))], cutAfter: 2, end: "cut", gapMs: 5 })
    const f = await rig.sidecar({ backends: [backend("a", m)] })
    const before = await f.metrics()
    const a = await f.chat({ stream_options: { include_usage: true } })
    expect([a.status, a.text, a.done]).toEqual([200, "Partial answer", false])
    expect(a.error).toEqual({ message: expect.any(String), type: "upstream_stream_error", code: "stream_cut" })
    expect(a.events[a.events.length - 1]).toEqual({ error: a.error })
    expect(m.requests).toHaveLength(1)

    await f.stillServes(m)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="no_backend"}': 1
    })
    expect(streamLogs(f).map((l) => [l["level"], l["msg"], l["kind"], l["outcome"], l["backend"], l["tries"]])).toEqual([
      ["warn", "stream_break", "cut", undefined, "a", undefined],
      ["warn", "stream_continuation", "cut", "no_backend", null, 0]
    ])
    await rig.close()
    expect(rowsOf(f, "attempt", "stream_end", "prompt_tokens", "completion_tokens")).toEqual([
      [1, "cut", null, null],
      [1, "complete", null, null]
    ])
  })

  it("cut when the only capable backend is not free (rpm window full) → no_backend, nothing sent", async () => {
    const ma = await rig.upstream()
    const mc = await rig.upstream()
    ma.reply({ kind: "sse", events: [sse(chunk("Once")), sse(chunk(" more"))], cutAfter: 2, end: "cut", gapMs: 5 })
    const f = await rig.sidecar({
      backends: [backend("a", ma, { prefill_continuation: true, rpm: 1 }), backend("c", mc)]
    })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error?.code]).toEqual([200, "Once more", false, "stream_cut"])
    expect([ma.requests.length, mc.requests.length]).toEqual([1, 0])
    await f.stillServes(mc)
    expect(prefills(mc)).toBe(0)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="no_backend"}': 1
    })
  })

  it("the broken backend goes first when it declared prefill and is free, even if another capable backend comes first in pool order", async () => {
    const mb = await rig.upstream()
    const ma = await rig.upstream()
    const f = await rig.sidecar({
      backends: [backend("b", mb, { prefill_continuation: true }), backend("a", ma, { prefill_continuation: true })]
    })
    // Round-robin: this request goes to b, so the next one goes to a.
    await f.stillServes(mb)
    ma.reply(
      { kind: "sse", events: [sse(chunk("Round")), sse(chunk(" and"))], cutAfter: 2, end: "cut", gapMs: 5 },
      { kind: "sse", events: [sse(chunk(" round."))], gapMs: 5 }
    )
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "Round and round.", true, undefined])
    expect([ma.requests.length, mb.requests.length]).toEqual([2, 1])
    expect(lastMessage(bodyOf(ma, 1))).toEqual({ role: "assistant", content: "Round and" })
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
    await f.stillServes(mb)
    expect(prefills(mb)).toBe(0)
  })

  it("the broken backend is not free (rpm window full) → the next capable backend in pool order continues", async () => {
    const ma = await rig.upstream()
    const mb = await rig.upstream()
    const mc = await rig.upstream()
    const md = await rig.upstream()
    ma.reply({ kind: "sse", events: [sse(chunk("Left")), sse(chunk(" right"))], cutAfter: 2, end: "cut", gapMs: 5 })
    mb.reply({ kind: "sse", events: [sse(chunk(" left."))], gapMs: 5 })
    const f = await rig.sidecar({
      routing: { pools: ["primary", "fallback"] },
      backends: [
        backend("a", ma, { prefill_continuation: true, rpm: 1 }),
        backend("d", md, { pool: "fallback" }),
        backend("b", mb, { pool: "fallback", prefill_continuation: true }),
        backend("c", mc, { pool: "fallback", prefill_continuation: true })
      ]
    })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "Left right left.", true, undefined])
    expect([ma.requests.length, mb.requests.length, mc.requests.length, md.requests.length]).toEqual([1, 1, 0, 0])
    expect(lastMessage(bodyOf(mb, 0))).toEqual({ role: "assistant", content: "Left right" })
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
    expect(streamLogs(f).map((l) => [l["msg"], l["backend"], l["tries"]])).toEqual([
      ["stream_break", "a", undefined],
      ["stream_continuation", "b", 1]
    ])
    // a's rpm window is still full: the next request goes to the fallback pool, round-robin after b.
    await f.stillServes(mc)
    expect([ma.requests.length, mb.requests.length, mc.requests.length, md.requests.length]).toEqual([1, 1, 1, 0])
    expect(prefills(mc)).toBe(0)
  })

  it("stall beyond stream_idle_timeout_ms → continued, the continuation sent once the idle timeout ran out after the last event", async () => {
    const idleMs = 300
    const gapMs = 100
    const m = await rig.upstream()
    m.reply(
      { kind: "sse", events: [sse(chunk("Once")), sse(chunk(" upon")), sse(chunk(" a"))], cutAfter: 3, end: "hang", gapMs },
      { kind: "sse", events: [sse(chunk(" time.")), sse(usageChunk(9, 2))], gapMs: 5 }
    )
    const f = await rig.sidecar({
      backends: [backend("a", m, { prefill_continuation: true, stream_idle_timeout_ms: idleMs })]
    })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "Once upon a time.", true, undefined])
    expect(m.requests).toHaveLength(2)
    expect(lastMessage(bodyOf(m, 1))).toEqual({ role: "assistant", content: "Once upon a" })
    // The last event was written 2 gaps after the first request arrived (timers never fire early).
    const sinceLastEvent = m.requests[1]!.at - (m.requests[0]!.at + 2 * gapMs)
    expect(sinceLastEvent).toBeGreaterThanOrEqual(idleMs - 5)
    expect(sinceLastEvent).toBeLessThan(idleMs + 1500)

    await f.stillServes(m)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="stall"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
    expect(streamLogs(f).map((l) => [l["msg"], l["kind"], l["outcome"]])).toEqual([
      ["stream_break", "stall", undefined],
      ["stream_continuation", "stall", "continued"]
    ])
    await rig.close()
    expect(rowsOf(f, "attempt", "stream_end", "prompt_tokens", "completion_tokens")).toEqual([
      [1, "stall", null, null],
      [2, "complete", 9, 2],
      [1, "complete", null, null]
    ])
  })

  it("reset mid-stream → continued", async () => {
    const m = await rig.upstream()
    m.reply(
      { kind: "sse", events: [sse(chunk("Alpha")), sse(chunk(" beta"))], cutAfter: 2, end: "reset", gapMs: 20 },
      { kind: "sse", events: [sse(chunk(" gamma")), sse(usageChunk(11, 1))], gapMs: 5 }
    )
    const f = await rig.sidecar({ backends: [backend("a", m, { prefill_continuation: true })] })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "Alpha beta gamma", true, undefined])
    expect(m.requests).toHaveLength(2)
    expect(lastMessage(bodyOf(m, 1))).toEqual({ role: "assistant", content: "Alpha beta" })

    const after = await afterwards(f, m, before, "attempt", "stream_end", "prompt_tokens", "completion_tokens")
    expect(after.counters).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="reset"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
    expect(after.rows).toEqual([
      [1, "reset", null, null],
      [2, "complete", 11, 1],
      [1, "complete", null, null]
    ])
  })

  it("every continuation try fails before its commit point (400 refusing the prefill, first-token timeout) → the ORIGINAL stream_cut (failed)", async () => {
    const ma = await rig.upstream()
    const mb1 = await rig.upstream()
    const mb2 = await rig.upstream()
    const mb3 = await rig.upstream()
    const mc = await rig.upstream()
    ma.reply({ kind: "sse", events: [sse(chunk("It was")), sse(chunk(" a dark"))], cutAfter: 2, end: "cut", gapMs: 5 })
    mb1.reply({
      kind: "json",
      status: 400,
      body: { error: { message: "prefill not supported", type: "invalid_request_error", code: "bad_prefill" } }
    })
    mb2.reply({ kind: "headersThenSilence" })
    const f = await rig.sidecar({
      routing: { pools: ["primary", "fallback"] },
      backends: [
        backend("a", ma),
        backend("c", mc, { pool: "fallback" }),
        backend("b1", mb1, { pool: "fallback", prefill_continuation: true }),
        backend("b2", mb2, { pool: "fallback", prefill_continuation: true, first_token_timeout_ms: 300 }),
        // Capable and free, but max_continuations (default 2) is used up by the two tries before it.
        backend("b3", mb3, { pool: "fallback", prefill_continuation: true })
      ]
    })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done]).toEqual([200, "It was a dark", false])
    expect(a.error).toEqual({ message: expect.any(String), type: "upstream_stream_error", code: "stream_cut" })
    expect(a.body).not.toContain("prefill not supported")
    expect(a.body).not.toContain("bad_prefill")

    expect([ma.requests.length, mb1.requests.length, mb2.requests.length, mb3.requests.length, mc.requests.length])
      .toEqual([1, 1, 1, 0, 0])
    expect(lastMessage(bodyOf(mb1, 0))).toEqual({ role: "assistant", content: "It was a dark" })
    expect(lastMessage(bodyOf(mb2, 0))).toEqual({ role: "assistant", content: "It was a dark" })

    await f.stillServes(ma)
    expect(mc.requests).toHaveLength(0)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="failed"}': 1
    })
    expect(streamLogs(f).map((l) => [l["msg"], l["kind"], l["outcome"], l["backend"], l["tries"]])).toEqual([
      ["stream_break", "cut", undefined, "a", undefined],
      ["stream_continuation", "cut", "failed", null, 2]
    ])
    expect(completed(f).map((l) => [l["status"], l["attempts"]])).toEqual([[200, 3], [200, 1]])
    await rig.close()
    expect(rowsOf(f, "backend", "attempt", "status", "error_class", "stream_end")).toEqual([
      ["a", 1, 200, "Success", "cut"],
      ["b1", 2, 400, "CallerFault", null],
      ["b2", 3, null, "Timeout", null],
      ["a", 1, 200, "Success", "complete"]
    ])
  })

  it("a continuation whose first event is an error event has failed: none of it reaches the client, the next capable backend continues", async () => {
    const ma = await rig.upstream()
    const mb = await rig.upstream()
    const mc = await rig.upstream()
    ma.reply({ kind: "sse", events: [sse(chunk("Once")), sse(chunk(" upon"))], cutAfter: 2, end: "cut", gapMs: 5 })
    mb.reply({ kind: "sse", events: [sse({ error: { message: "context too long", type: "invalid_request_error", code: "ctx" } })] })
    mc.reply({ kind: "sse", events: [sse(chunk(" a time.")), sse(finishChunk())], gapMs: 5 })
    const f = await rig.sidecar({
      backends: [backend("a", ma), backend("b", mb, { prefill_continuation: true }), backend("c", mc, { prefill_continuation: true })]
    })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "Once upon a time.", true, undefined])
    expect(a.body).not.toContain("context too long")
    expect([ma.requests.length, mb.requests.length, mc.requests.length]).toEqual([1, 1, 1])
    expect(lastMessage(bodyOf(mc, 0))).toEqual({ role: "assistant", content: "Once upon" })
    const after = await afterwards(f, ma, before, "backend", "attempt", "outcome", "stream_end")
    expect(after.counters).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
    expect(after.rows).toEqual([
      ["a", 1, "success", "cut"],
      ["b", 2, "connect_error", null],
      ["c", 3, "success", "complete"],
      ["a", 1, "success", "complete"]
    ])
  })

  it("a tool-call stream cut → error event, no continuation request (not_continuable)", async () => {
    const m = await rig.upstream()
    m.reply({
      kind: "sse",
      events: [
        sse(toolChunk({
          role: "assistant",
          content: null,
          tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }]
        })),
        sse(toolChunk({ tool_calls: [{ index: 0, function: { arguments: "{\"city\":" } }] }))
      ],
      cutAfter: 2,
      end: "cut",
      gapMs: 5
    })
    const f = await rig.sidecar({ backends: [backend("a", m, { prefill_continuation: true, continuation_extra_body: VLLM })] })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error?.code]).toEqual([200, "", false, "stream_cut"])
    expect(a.events).toHaveLength(3)
    expect(m.requests).toHaveLength(1)

    await f.stillServes(m)
    expect(prefills(m)).toBe(0)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="not_continuable"}': 1
    })
    expect(streamLogs(f).map((l) => [l["msg"], l["outcome"], l["backend"], l["tries"]])).toEqual([
      ["stream_break", undefined, "a", undefined],
      ["stream_continuation", "not_continuable", null, 0]
    ])
  })

  it("an answer that already reached its finish_reason, cut before [DONE] → error event, not continued (not_continuable)", async () => {
    const m = await rig.upstream()
    m.reply({ kind: "sse", events: [sse(chunk("All done.")), sse(finishChunk())], cutAfter: 2, end: "cut", gapMs: 5 })
    const f = await rig.sidecar({ backends: [backend("a", m, { prefill_continuation: true })] })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error?.code]).toEqual([200, "All done.", false, "stream_cut"])
    expect(m.requests).toHaveLength(1)
    await f.stillServes(m)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="not_continuable"}': 1
    })
  })

  it("max_continuations: 1 and the continuation breaks too → the ORIGINAL break's error event (limit_reached)", async () => {
    const m = await rig.upstream()
    m.reply(
      { kind: "sse", events: [sse(chunk("One")), sse(chunk(" two"))], cutAfter: 2, end: "cut", gapMs: 5 },
      { kind: "sse", events: [sse(chunk(" three")), sse(chunk(" four"))], cutAfter: 2, end: "reset", gapMs: 20 }
    )
    const f = await rig.sidecar({
      routing: { max_continuations: 1 },
      backends: [backend("a", m, { prefill_continuation: true })]
    })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done]).toEqual([200, "One two three four", false])
    expect(m.requests).toHaveLength(2)
    expect(lastMessage(bodyOf(m, 1))).toEqual({ role: "assistant", content: "One two" })

    await f.stillServes(m)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_breaks_total{backend="a",kind="reset"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1,
      'sidecar_stream_continuations_total{outcome="limit_reached"}': 1
    })
    expect(streamLogs(f).map((l) => [l["msg"], l["kind"], l["outcome"], l["tries"]])).toEqual([
      ["stream_break", "cut", undefined, undefined],
      ["stream_continuation", "cut", "continued", 1],
      ["stream_break", "reset", undefined, undefined],
      ["stream_continuation", "reset", "limit_reached", 0]
    ])
    expect(completed(f).map((l) => [l["status"], l["attempts"]])).toEqual([[200, 2], [200, 1]])
    await rig.close()
    expect(rowsOf(f, "attempt", "stream_end", "prompt_tokens", "completion_tokens")).toEqual([
      [1, "cut", null, null],
      [2, "reset", null, null],
      [1, "complete", null, null]
    ])
    // Last: the code the client saw names the original break (SPEC §1), not the continuation's.
    expect(a.error).toEqual({ message: expect.any(String), type: "upstream_stream_error", code: "stream_cut" })
  })

  it("client did not ask for usage → the continuation's usage chunk does not reach it; the ledger has its tokens", async () => {
    const m = await rig.upstream()
    m.reply(
      { kind: "sse", events: [sse(chunk("Hi")), sse(chunk(" there"))], cutAfter: 2, end: "cut", gapMs: 5 },
      { kind: "sse", events: [sse(chunk(" friend.")), sse(finishChunk()), sse(usageChunk(30, 3))], gapMs: 5 }
    )
    const f = await rig.sidecar({ backends: [backend("a", m, { prefill_continuation: true })] })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error, a.usage]).toEqual([200, "Hi there friend.", true, undefined, undefined])
    expect(usages(a.events)).toBe(0)
    expect(bodyOf(m, 1)["stream_options"]).toEqual({ include_usage: true })
    const after = await afterwards(f, m, before, "attempt", "stream_end", "prompt_tokens", "completion_tokens")
    expect(after.counters).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
    expect(after.rows).toEqual([
      [1, "cut", null, null],
      [2, "complete", 30, 3],
      [1, "complete", null, null]
    ])
  })

  it("usage reported by the broken attempt → the restated usage uses its prompt and completion tokens", async () => {
    const m = await rig.upstream()
    const withUsage = (content: string, completion: number) =>
      chunk(content, { usage: { prompt_tokens: 12, completion_tokens: completion, total_tokens: 12 + completion } })
    m.reply(
      { kind: "sse", events: [sse(withUsage("A", 1)), sse(withUsage(" B", 4))], cutAfter: 2, end: "cut", gapMs: 5 },
      { kind: "sse", events: [sse(chunk(" C")), sse(usageChunk(16, 1))], gapMs: 5 }
    )
    const f = await rig.sidecar({ backends: [backend("a", m, { prefill_continuation: true })] })
    const before = await f.metrics()
    const a = await f.chat({ max_completion_tokens: 50, stream_options: { include_usage: true } })
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "A B C", true, undefined])
    expect(a.usage).toEqual({ prompt_tokens: 12, completion_tokens: 4 + 1, total_tokens: 17 })
    expect(bodyOf(m, 1)["max_completion_tokens"]).toBe(46)
    const after = await afterwards(f, m, before, "attempt", "stream_end", "prompt_tokens", "completion_tokens")
    expect(after.counters).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
    expect(after.rows).toEqual([
      [1, "cut", 12, 4],
      [2, "complete", 16, 1],
      [1, "complete", null, null]
    ])
  })

  it("trailing-whitespace seam: streamed \"Hello\\n\", prefill \"Hello\", continuation \"\\nWorld\" → \"Hello\\nWorld\"", async () => {
    const m = await rig.upstream()
    m.reply(
      { kind: "sse", events: [sse(roleChunk()), sse(chunk("Hel")), sse(chunk("lo\n"))], cutAfter: 3, end: "cut", gapMs: 5 },
      { kind: "sse", events: [sse(roleChunk()), sse(chunk("\nWorld")), sse(finishChunk())], gapMs: 5 }
    )
    const f = await rig.sidecar({ backends: [backend("a", m, { prefill_continuation: true })] })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "Hello\nWorld", true, undefined])
    expect(roles(a.events)).toBe(1)
    expect(lastMessage(bodyOf(m, 1))).toEqual({ role: "assistant", content: "Hello" })
    await f.stillServes(m)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
  })

  it.each([
    ["repeated across two deltas", ["\n", "\nWorld"]],
    ["partly repeated", ["\nWorld"]],
    ["not repeated", ["World"]]
  ])("trailing-whitespace seam, %s → exactly the streamed text plus what is new", async (_name, deltas) => {
    const m = await rig.upstream()
    m.reply(
      { kind: "sse", events: [sse(chunk("Hello\n\n"))], cutAfter: 1, end: "cut", gapMs: 5 },
      { kind: "sse", events: [sse(roleChunk()), ...deltas.map((d) => sse(chunk(d)))], gapMs: 5 }
    )
    const f = await rig.sidecar({ backends: [backend("a", m, { prefill_continuation: true })] })
    const before = await f.metrics()
    const a = await f.chat()
    expect([a.status, a.text, a.done, a.error]).toEqual([200, "Hello\n\nWorld", true, undefined])
    expect(lastMessage(bodyOf(m, 1))).toEqual({ role: "assistant", content: "Hello" })
    await f.stillServes(m)
    expect(await streamCounters(f, before)).toEqual({
      'sidecar_stream_breaks_total{backend="a",kind="cut"}': 1,
      'sidecar_stream_continuations_total{outcome="continued"}': 1
    })
  })

  it("the client leaving during the continuation search aborts the continuation upstream request", async () => {
    const m = await rig.upstream()
    m.reply(
      { kind: "sse", events: [sse(chunk("Wait")), sse(chunk(" for"))], cutAfter: 2, end: "cut", gapMs: 5 },
      { kind: "sse", events: [sse(chunk(" it")), sse(usageChunk(5, 1))], firstDelayMs: 2000 }
    )
    const f = await rig.sidecar({ backends: [backend("a", m, { prefill_continuation: true })] })
    const before = await f.metrics()
    const controller = new AbortController()
    const res = await fetch(`${f.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer client-key" },
      body: JSON.stringify({ model: "m1", messages: [USER], stream: true }),
      signal: controller.signal
    })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let received = ""
    while (!received.includes("\" for\"")) {
      const { done, value } = await reader.read()
      if (done) throw new Error(`stream ended early: ${received}`)
      received += decoder.decode(value, { stream: true })
    }
    // The first attempt is cut, the continuation has been sent and waits for its first event.
    await waitFor("the continuation request", () => m.requests.length === 2)
    const closesBefore = m.socketCloses.length
    const closed = m.nextSocketClose(1500)
    const abortedAt = Date.now()
    controller.abort()
    await reader.read().catch(() => undefined)
    const closedAt = await closed
    expect(closedAt - abortedAt).toBeLessThan(1500)
    expect(m.socketCloses.length).toBeGreaterThan(closesBefore)
    expect(received).not.toContain("error")

    await waitFor("request_completed", () => completed(f).length === 1)
    await f.stillServes(m)
    expect(m.requests).toHaveLength(3)
    const counters = await streamCounters(f, before)
    const total = (prefix: string) =>
      Object.entries(counters).filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0)
    expect(counters['sidecar_stream_breaks_total{backend="a",kind="cut"}']).toBe(1)
    expect(counters['sidecar_stream_continuations_total{outcome="continued"}']).toBeUndefined()
    expect(counters['sidecar_stream_continuations_total{outcome="client_closed"}']).toBe(1)
    const requestCompleted = completed(f).map((l) => [l["status"], l["attempts"]])
    await rig.close()
    expect(rowsOf(f, "attempt", "outcome", "error_class", "stream_end")).toEqual([
      [1, "success", "Success", "cut"],
      [2, "cancelled", "ClientClosed", null],
      [1, "success", "Success", "complete"]
    ])
    // The continuation attempt is one of the request's attempts (it has its ledger row, attempt 2).
    expect(requestCompleted).toEqual([[499, 2], [200, 1]])
    // Exactly one outcome per break: the two totals stay equal (README "Accounting").
    expect(total("sidecar_stream_continuations_total")).toBe(total("sidecar_stream_breaks_total"))
  })
})
