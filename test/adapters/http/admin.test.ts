// The admin API on 127.0.0.1 (SPEC §6), mounted on the production server with backends in memory:
// auth, validation naming the field, keys shown as their last 4, changes routing at once, usage.
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { MockUpstream } from "../../fakes/MockUpstream.js"
import { type AdminSidecar, startAdminSidecar } from "../../fakes/AdminSidecar.js"
import { attempt } from "../../fakes/UsageReportsMemory.js"
import type { AttemptRecord } from "../../../src/domain/Attempt.js"

const TOKEN = "admin-token-for-tests"
const KEY = "sk-live-secret-WXYZ"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

const sidecar = async (config: Record<string, unknown> = {}, records: ReadonlyArray<AttemptRecord> = []) => {
  const s = await startAdminSidecar({ security: { admin_token: TOKEN }, ...config }, records)
  cleanups.push(s.stop)
  return s
}

const upstream = async () => {
  const m = await MockUpstream.start({ kind: "json", body: { id: "c", choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 } } })
  cleanups.push(() => m.close())
  return m
}

interface Reply {
  readonly status: number
  readonly text: string
  readonly json: any
  readonly headers: Headers
}

const call = async (
  s: AdminSidecar,
  method: string,
  path: string,
  options: { body?: unknown; token?: string | null } = {}
): Promise<Reply> => {
  const headers: Record<string, string> = { "content-type": "application/json" }
  const token = options.token === undefined ? TOKEN : options.token
  if (token !== null) headers["authorization"] = `Bearer ${token}`
  const init: RequestInit = { method, headers }
  if (options.body !== undefined) init.body = typeof options.body === "string" ? options.body : JSON.stringify(options.body)
  const res = await fetch(`${s.url}${path}`, init)
  const text = await res.text()
  return { status: res.status, text, json: text === "" ? undefined : JSON.parse(text), headers: res.headers }
}

const backend = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  pool: "primary",
  base_url: "https://api.example.com/v1",
  api_key: KEY,
  ...extra
})

const errorOf = (r: Reply) => {
  expect(r.json).toEqual({ error: { message: expect.any(String), type: expect.any(String), code: expect.any(String) } })
  return r.json.error.message as string
}

const picks = (s: AdminSidecar, model = "m") =>
  Effect.runPromise(s.fleet.pick({ model, pools: ["primary", "fallback"], mode: "direct" })).then(
    Option.map((t) => t.backend.id)
  )

describe("auth", () => {
  it("no admin token configured: every /admin path answers 404 in the OpenAI error shape", async () => {
    const s = await startAdminSidecar({})
    cleanups.push(s.stop)
    for (const [method, path] of [["GET", "/admin/backends"], ["POST", "/admin/backends"], ["GET", "/admin/usage"]] as const) {
      const r = await call(s, method, path, { body: method === "POST" ? backend("x") : undefined, token: "anything" })
      expect(r.status).toBe(404)
      expect(errorOf(r)).toMatch(/admin API is disabled/)
    }
  })

  it("missing or wrong token → 401; the right one → 200", async () => {
    const s = await sidecar()
    const missing = await call(s, "GET", "/admin/backends", { token: null })
    expect(missing.status).toBe(401)
    expect(errorOf(missing)).toBe("Invalid or missing admin token")
    const wrong = await call(s, "GET", "/admin/backends", { token: `${TOKEN}x` })
    expect(wrong.status).toBe(401)
    expect(wrong.text).not.toContain(TOKEN)
    const body = await call(s, "POST", "/admin/backends", { token: "nope", body: backend("x") })
    expect(body.status).toBe(401)
    expect((await call(s, "GET", "/admin/backends")).status).toBe(200)
    expect((await call(s, "GET", "/admin/backends")).json).toEqual({ backends: [] })
  })

  it("unknown admin paths → 404, wrong methods → 405, both in the error shape", async () => {
    const s = await sidecar()
    const r = await call(s, "GET", "/admin/nothing")
    expect(r.status).toBe(404)
    expect(errorOf(r)).toBe("No admin route for GET /admin/nothing")
    const m = await call(s, "PUT", "/admin/backends")
    expect(m.status).toBe(405)
    expect(errorOf(m)).toMatch(/allowed: GET, POST/)
  })
})

describe("backends", () => {
  it("lists config backends with live state; the key shows only its last 4 characters", async () => {
    const s = await sidecar({
      backends: [backend("a", { rpm: 10, models: { m: { upstream: "up/m", input_per_mtok: 1 } } }), backend("b", { pool: "fallback", api_key: undefined })]
    })
    const r = await call(s, "GET", "/admin/backends")
    expect(r.status).toBe(200)
    expect(r.text).not.toContain(KEY)
    expect(r.json.backends).toEqual([
      {
        id: "a",
        pool: "primary",
        base_url: "https://api.example.com/v1",
        api_key: "…WXYZ",
        rpm: 10,
        timeout_ms: 120000,
        first_token_timeout_ms: 60000,
        stream_idle_timeout_ms: 60000,
        prefill_continuation: false,
        continuation_extra_body: null,
        continuation_message_extra: null,
        models: { m: { upstream: "up/m", input_per_mtok: 1, output_per_mtok: 0 } },
        enabled: true,
        state: { cooling_until: null, cooldown_reason: null, consecutive_429s: 0, consecutive_errors: 0, rate_window_remaining: 10 }
      },
      expect.objectContaining({ id: "b", pool: "fallback", api_key: null, rpm: null, models: null, state: expect.objectContaining({ rate_window_remaining: null }) })
    ])
    const one = await call(s, "GET", "/admin/backends/a")
    expect(one.json).toEqual(r.json.backends[0])
  })

  it("each validation failure is a 400 naming its field, and never shows the key", async () => {
    const s = await sidecar({ backends: [backend("taken")] })
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [backend("n1", { pool: "nowhere" }), /^pool: unknown pool "nowhere" \(routing\.pools: primary, fallback\)$/],
      [backend("n2", { base_url: "not a url" }), /^base_url: must be an absolute http\(s\) URL, got "not a url"$/],
      [backend("n3", { rpm: -5 }), /^rpm: expected a positive number, got -5$/],
      [backend("n4", { colour: "blue" }), /^colour: unknown key \(allowed: id, pool, base_url, api_key, rpm/],
      [backend("n5", { rpm: "fast" }), /^rpm: expected a number, got "fast"$/],
      [backend("n6", { enabled: "yes" }), /^enabled: expected true or false, got "yes"$/],
      [backend("n7", { api_key: 123456789 }), /^api_key: expected a string$/],
      [{ pool: "primary" }, /id: is required.*base_url: is required/],
      [backend("bad id!"), /^id: must be 1-64 characters/],
      [backend("n8", { models: { m: { upstream: "x", input_per_mtok: -1 } } }), /^models\.m\.input_per_mtok: expected a non-negative number, got -1$/]
    ]
    for (const [body, message] of cases) {
      const r = await call(s, "POST", "/admin/backends", { body })
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(errorOf(r)).toMatch(message)
      expect(r.text).not.toContain(KEY)
      expect(r.text).not.toContain("123456789")
    }
    const several = await call(s, "POST", "/admin/backends", { body: backend("n9", { rpm: 0, pool: "x" }) })
    expect(errorOf(several)).toMatch(/rpm: .*; pool: unknown pool "x"/)
    const dup = await call(s, "POST", "/admin/backends", { body: backend("taken") })
    expect(dup.status).toBe(409)
    expect(errorOf(dup)).toBe('id: a backend with id "taken" already exists')
    for (const raw of ["not json", "[1,2]", ""]) {
      const r = await call(s, "POST", "/admin/backends", { body: raw })
      expect(r.status).toBe(400)
      expect(errorOf(r)).toBe("body: expected a JSON object")
    }
    expect((await call(s, "GET", "/admin/backends")).json.backends.map((b: { id: string }) => b.id)).toEqual(["taken"])
  })

  it("create → routes at once (a proxied request reaches it) → disable → not picked → delete → gone", async () => {
    const m = await upstream()
    const s = await sidecar()
    expect(await picks(s)).toEqual(Option.none())
    const created = await call(s, "POST", "/admin/backends", { body: backend("new", { base_url: `${m.url}/v1`, rpm: 5, models: { m: { upstream: "up-m" } } }) })
    expect(created.status).toBe(201)
    expect(created.text).not.toContain(KEY)
    expect(created.json).toMatchObject({ id: "new", api_key: "…WXYZ", rpm: 5, enabled: true, state: { rate_window_remaining: 5 } })

    const proxied = await fetch(`${s.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "m", messages: [] }) })
    expect(proxied.status).toBe(200)
    expect(proxied.headers.get("x-sidecar-backend")).toBe("new")
    expect(m.requests[0]?.headers.authorization).toBe(`Bearer ${KEY}`)
    expect(JSON.parse(m.requests[0]!.body).model).toBe("up-m")

    const disabled = await call(s, "PATCH", "/admin/backends/new", { body: { enabled: false } })
    expect(disabled.status).toBe(200)
    expect(disabled.json).toMatchObject({ id: "new", enabled: false, api_key: "…WXYZ", rpm: 5, state: { rate_window_remaining: 4 } })
    expect(await picks(s)).toEqual(Option.none())
    expect((await call(s, "PATCH", "/admin/backends/new", { body: { enabled: true } })).status).toBe(200)
    expect(await picks(s)).toEqual(Option.some("new"))

    const removed = await call(s, "DELETE", "/admin/backends/new")
    expect(removed.status).toBe(204)
    expect(removed.text).toBe("")
    expect(await picks(s)).toEqual(Option.none())
    expect((await call(s, "GET", "/admin/backends")).json).toEqual({ backends: [] })
    for (const [method, body] of [["DELETE", undefined], ["PATCH", { enabled: true }], ["GET", undefined]] as const) {
      const r = await call(s, method, "/admin/backends/new", { body })
      expect(r.status).toBe(404)
      expect(errorOf(r)).toBe('No backend with id "new"')
    }
  })

  it("PATCH merges onto the backend: the key is kept unless given, null removes a field, the id cannot change", async () => {
    const m = await upstream()
    const s = await sidecar({ backends: [backend("a", { base_url: `${m.url}/v1`, rpm: 3 })] })
    const send = () => fetch(`${s.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m" }) })
    const patched = await call(s, "PATCH", "/admin/backends/a", { body: { rpm: null, timeout_ms: 5000 } })
    expect(patched.status).toBe(200)
    expect(patched.json).toMatchObject({ rpm: null, timeout_ms: 5000, api_key: "…WXYZ" })
    expect(patched.text).not.toContain(KEY)
    await send()
    expect(m.requests[0]?.headers.authorization).toBe(`Bearer ${KEY}`)

    const rekeyed = await call(s, "PATCH", "/admin/backends/a", { body: { api_key: "sk-new-key-1234" } })
    expect(rekeyed.json.api_key).toBe("…1234")
    await send()
    expect(m.requests[1]?.headers.authorization).toBe("Bearer sk-new-key-1234")

    const bad = await call(s, "PATCH", "/admin/backends/a", { body: { rpm: -1, pool: "nope" } })
    expect(bad.status).toBe(400)
    expect(errorOf(bad)).toMatch(/^rpm: expected a positive number, got -1; pool: unknown pool "nope"/)
    expect(bad.text).not.toContain("sk-new-key-1234")
    const renamed = await call(s, "PATCH", "/admin/backends/a", { body: { id: "b" } })
    expect(renamed.status).toBe(400)
    expect(errorOf(renamed)).toMatch(/^id: cannot be changed/)
    const emptyKey = await call(s, "PATCH", "/admin/backends/a", { body: { api_key: "" } })
    expect(errorOf(emptyKey)).toBe("api_key: must not be empty")
    const unknown = await call(s, "PATCH", "/admin/backends/a", { body: { bogus: 1 } })
    expect(errorOf(unknown)).toMatch(/^bogus: unknown key/)
    // Nothing above changed the backend.
    expect((await call(s, "GET", "/admin/backends/a")).json).toMatchObject({ rpm: null, pool: "primary", api_key: "…1234" })
  })
})

describe("usage", () => {
  const now = Date.now()
  const records = [
    attempt({ at: now - 60_000, backend: "a", model: "m1", promptTokens: 100, completionTokens: 20, costUsd: 0.5 }),
    attempt({ at: now - 120_000, backend: "a", model: "m2", promptTokens: 10, completionTokens: 5, costUsd: 0.25 }),
    attempt({ at: now - 30_000, backend: "b", pool: "fallback", model: "m1", phase: "emergency", outcome: "rate_limited", status: 429 }),
    attempt({ at: now - 3 * 86_400_000, backend: "old", promptTokens: 1000, costUsd: 9 })
  ]

  it("defaults: the last 24 h, by backend; exact sums and the documented shape", async () => {
    const s = await sidecar({}, records)
    const r = await call(s, "GET", "/admin/usage")
    expect(r.status).toBe(200)
    expect(r.json).toEqual({
      since: expect.any(String),
      until: expect.any(String),
      group_by: "backend",
      rows: [
        { backend: "a", requests: 2, errors: 0, prompt_tokens: 110, completion_tokens: 25, cost_usd: 0.75 },
        { backend: "b", requests: 1, errors: 1, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 }
      ],
      total: { requests: 3, errors: 1, prompt_tokens: 110, completion_tokens: 25, cost_usd: 0.75 }
    })
    const q = s.usageQueries[0]!
    expect(q.until - q.since).toBe(86_400_000)
    expect(Math.abs(q.until - Date.now())).toBeLessThan(5_000)
    expect(r.json.until).toBe(new Date(q.until).toISOString())
  })

  it("since/until as durations or ISO-8601, each group_by", async () => {
    const s = await sidecar({}, records)
    const byModel = await call(s, "GET", "/admin/usage?since=7d&group_by=model")
    expect(byModel.json.rows).toEqual([
      { model: "llama-70b", requests: 1, errors: 0, prompt_tokens: 1000, completion_tokens: 0, cost_usd: 9 },
      { model: "m1", requests: 2, errors: 1, prompt_tokens: 100, completion_tokens: 20, cost_usd: 0.5 },
      { model: "m2", requests: 1, errors: 0, prompt_tokens: 10, completion_tokens: 5, cost_usd: 0.25 }
    ])
    const byPool = await call(s, "GET", "/admin/usage?since=90s&group_by=pool")
    expect(byPool.json.rows).toEqual([
      { pool: "fallback", requests: 1, errors: 1, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 },
      { pool: "primary", requests: 1, errors: 0, prompt_tokens: 100, completion_tokens: 20, cost_usd: 0.5 }
    ])
    const since = new Date(now - 4 * 86_400_000).toISOString()
    const until = new Date(now - 86_400_000).toISOString()
    const window = await call(s, "GET", `/admin/usage?since=${since}&until=${until}&group_by=phase`)
    expect(window.json).toMatchObject({ since, until, group_by: "phase", rows: [{ phase: "direct", requests: 1, cost_usd: 9 }] })
    expect(s.usageQueries.at(-1)).toEqual({ since: Date.parse(since), until: Date.parse(until), groupBy: "phase" })
    const day = await call(s, "GET", "/admin/usage?since=2020-01-01&until=2020-01-02")
    expect(day.json).toMatchObject({ since: "2020-01-01T00:00:00.000Z", until: "2020-01-02T00:00:00.000Z", rows: [], total: { requests: 0 } })
  })

  it("bad parameters → 400 naming the parameter", async () => {
    const s = await sidecar({}, records)
    const cases: Array<[string, RegExp]> = [
      ["since=yesterday", /^since: expected an ISO-8601 instant .* got "yesterday"$/],
      ["until=24x", /^until: expected an ISO-8601 instant .* got "24x"$/],
      ["group_by=colour", /^group_by: must be one of: backend, model, pool, phase, got "colour"$/],
      ["since=1h&until=2h", /^since: must be before until/],
      ["groupby=model", /^groupby: unknown parameter/],
      ["since=1h&since=2h", /^since: given more than once/]
    ]
    for (const [query, message] of cases) {
      const r = await call(s, "GET", `/admin/usage?${query}`)
      expect(r.status, query).toBe(400)
      expect(errorOf(r)).toMatch(message)
    }
  })
})
