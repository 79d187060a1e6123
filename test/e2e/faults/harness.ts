// The fault suite's harness: Sidecar in-process (logs captured, /metrics on its port, the usage
// ledger in a real SQLite file), scripted misbehaving upstreams on 127.0.0.1, and a client that
// reads a streamed answer event by event so a test sees exactly what a client would.
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
// @ts-expect-error better-sqlite3 ships no types; the suite only needs prepare/all/close.
import Database from "better-sqlite3"
import { expect } from "@effect/vitest"
import { isObject } from "../../../src/adapters/upstream/JsonValue.js"
import { MockUpstream, type MockReply } from "../../fakes/MockUpstream.js"
import { type Running, startSidecar } from "../../adapters/telemetry/harness.js"
import { fromPrometheus } from "../../adapters/telemetry/series.js"

export { chunk, sse, usageChunk } from "../../fakes/MockUpstream.js"

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Everything a test starts, stopped after it (Sidecar first, so its drain sees live upstreams). */
export class Rig {
  private readonly upstreams: Array<MockUpstream> = []
  private readonly sidecars: Array<Running> = []
  readonly dir = mkdtempSync(join(tmpdir(), "sidecar-faults-"))

  async upstream(fallback?: MockReply): Promise<MockUpstream> {
    const m = await MockUpstream.start(fallback)
    this.upstreams.push(m)
    return m
  }

  /** Starts Sidecar on `config` (YAML shape); its usage ledger is `<dir>/sidecar.db`. */
  async sidecar(config: Record<string, unknown>): Promise<Faulty> {
    const db = join(this.dir, `sidecar-${this.sidecars.length}.db`)
    const s = await startSidecar(
      { logging: { level: "info" }, storage: { sqlite: db }, ...config },
      { SIDECAR_MASTER_KEY: "11".repeat(32) }
    )
    this.sidecars.push(s)
    return new Faulty(s, db)
  }

  async close(): Promise<void> {
    for (const s of this.sidecars.splice(0)) await s.stop()
    for (const m of this.upstreams.splice(0)) await m.close()
  }
}

/** A backend entry (YAML shape) on a mock upstream. */
export const backend = (id: string, m: MockUpstream, extra: Record<string, unknown> = {}) => ({
  id,
  pool: "primary",
  base_url: `${m.url}/v1`,
  api_key: `sk-${id}-secret`,
  ...extra
})

/** What a client received for one request. */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  /** Every SSE data payload in order, JSON-parsed when it parses (`[DONE]` kept as the string). */
  readonly events: ReadonlyArray<unknown>
  /** The assembled text: every `choices[0].delta.content` in order (or the JSON body's message). */
  readonly text: string
  /** The in-band error event's `error`, if one came. */
  readonly error: { readonly message: string; readonly type: string; readonly code: string } | undefined
  /** `data: [DONE]` was received. */
  readonly done: boolean
  /** The last `usage` object received. */
  readonly usage: Record<string, number> | undefined
  /** The raw body. */
  readonly body: string
}

const dataOf = (event: string): string | undefined => {
  const lines = event.split(/\r\n|\r|\n/).filter((l) => l.startsWith("data:"))
  return lines.length === 0 ? undefined : lines.map((l) => l.slice(l[5] === " " ? 6 : 5)).join("\n")
}

/** Reads an answer: SSE event by event when it is a stream, else its JSON. */
export const readAnswer = async (res: Response): Promise<Answer> => {
  const body = await res.text()
  const events: Array<unknown> = []
  let text = ""
  let error: Answer["error"]
  let usage: Answer["usage"]
  let done = false
  if ((res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    for (const raw of body.split(/\r?\n\r?\n/)) {
      const data = dataOf(raw)
      if (data === undefined) continue
      if (data === "[DONE]") {
        done = true
        events.push(data)
        continue
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(data)
      } catch {
        events.push(data)
        continue
      }
      events.push(parsed)
      if (!isObject(parsed)) continue
      if (isObject(parsed["error"])) error = parsed["error"] as Answer["error"]
      if (isObject(parsed["usage"])) usage = parsed["usage"] as Answer["usage"]
      const choices = parsed["choices"]
      const delta = Array.isArray(choices) && isObject(choices[0]) ? choices[0]["delta"] : undefined
      if (isObject(delta) && typeof delta["content"] === "string") text += delta["content"]
    }
  } else {
    try {
      const json = JSON.parse(body) as Record<string, unknown>
      const choices = json["choices"]
      const message = Array.isArray(choices) && isObject(choices[0]) ? choices[0]["message"] : undefined
      if (isObject(message) && typeof message["content"] === "string") text = message["content"]
      if (isObject(json["error"])) error = json["error"] as Answer["error"]
      if (isObject(json["usage"])) usage = json["usage"] as Answer["usage"]
    } catch {
      // not JSON: the raw body says it
    }
  }
  return { status: res.status, headers: res.headers, events, text, error, done, usage, body }
}

export class Faulty {
  constructor(readonly s: Running, readonly db: string) {}

  get url(): string {
    return this.s.url
  }

  /** POSTs a chat completion (streamed unless `stream: false` is in `extra`) and reads the answer. */
  async chat(extra: Record<string, unknown> = {}, model = "m1"): Promise<Answer> {
    const res = await fetch(`${this.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer client-key" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "Tell me a story" }], stream: true, ...extra })
    })
    return readAnswer(res)
  }

  /** The counters and gauges at /metrics, as `name{k="v",…}` → value (labels sorted). */
  async metrics(): Promise<Map<string, number>> {
    const res = await fetch(`${this.url}/metrics`)
    return fromPrometheus(await res.text())
  }

  /** The captured log lines, parsed. */
  logs(): Array<Record<string, unknown>> {
    return this.s.logs.map((l) => JSON.parse(l) as Record<string, unknown>)
  }

  /** The usage rows, in order (stop Sidecar first: `rig.close()` drains the ledger). */
  rows(): Array<Record<string, unknown>> {
    const ledger = new Database(this.db, { readonly: true })
    try {
      return ledger.prepare("SELECT * FROM usage ORDER BY id").all() as Array<Record<string, unknown>>
    } finally {
      ledger.close()
    }
  }

  /** Sidecar still answers a plain request through `m` right afterwards. */
  async stillServes(m: MockUpstream, model = "m1"): Promise<void> {
    m.reply({ kind: "json", body: { id: "ok", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: "fine" }, finish_reason: "stop" }] } })
    const a = await this.chat({ stream: false }, model)
    expect([a.status, a.text]).toEqual([200, "fine"])
  }
}
