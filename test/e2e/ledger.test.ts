// The usage ledger as an operator relies on it: a real process, a burst of proxied requests
// (streamed and not, served and failed), SIGTERM in the middle — and afterwards every attempt
// that reached an upstream has exactly one row, with its tokens. Keys never reach the files.
import { afterEach, describe, expect, it } from "@effect/vitest"
// @ts-expect-error better-sqlite3 ships no types; the test only needs prepare/all/close.
import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { start } from "../../src/app/Embedded.js"
import { chunk, MockUpstream, sse, usageChunk } from "../fakes/MockUpstream.js"

const root = join(import.meta.dirname, "..", "..")
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

const waitFor = async (pred: () => boolean, ms: number) => {
  const until = Date.now() + ms
  while (!pred()) {
    if (Date.now() > until) throw new Error("timed out waiting")
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe("the usage ledger across a SIGTERM", () => {
  it("every attempt that reached an upstream has its row, tokens included; no key in any file", async () => {
    const ok = await MockUpstream.start({ kind: "json", delayMs: 300, body: { id: "x", object: "chat.completion", choices: [], usage: { prompt_tokens: 11, completion_tokens: 7 } } })
    const limited = await MockUpstream.start({ kind: "json", status: 429, headers: { "retry-after": "1" }, body: { error: { message: "slow down" } } })
    const streaming = await MockUpstream.start({ kind: "sse", gapMs: 30, events: [sse(chunk("a")), sse(chunk("b")), sse(usageChunk(5, 2))] })
    cleanups.push(() => ok.close(), () => limited.close(), () => streaming.close())
    const dir = mkdtempSync(join(tmpdir(), "sidecar-ledger-"))
    const db = join(dir, "sidecar.db")
    const keys = ["sk-ledger-key-one-1111", "sk-ledger-key-two-2222", "sk-ledger-key-three-333"]
    writeFileSync(join(dir, "sidecar.yaml"), [
      "routing: { wait_if_shorter_than_ms: 0 }",
      "backends:",
      `  - { id: limited, pool: primary, base_url: "${limited.url}/v1", api_key: "\${LEDGER_KEY_0}" }`,
      `  - { id: ok, pool: primary, base_url: "${ok.url}/v1", api_key: "\${LEDGER_KEY_1}", models: { chat: { upstream: up-chat, input_per_mtok: 1000, output_per_mtok: 2000 } } }`,
      `  - { id: streaming, pool: fallback, base_url: "${streaming.url}/v1", api_key: "\${LEDGER_KEY_2}", models: { stream-model: { upstream: up-stream } } }`,
      ""
    ].join("\n"))
    const port = 20_000 + Math.floor(Math.random() * 20_000)
    const child = spawn(process.execPath, ["--import", "tsx", "src/app/main.ts"], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", SIDECAR_CONFIG: join(dir, "sidecar.yaml"), SIDECAR_DB: db, SIDECAR_PORT: String(port), SIDECAR_LOG_LEVEL: "debug", LEDGER_KEY_0: keys[0]!, LEDGER_KEY_1: keys[1]!, LEDGER_KEY_2: keys[2]! },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    cleanups.push(() => void child.kill("SIGKILL"))
    await waitFor(() => out.includes('"msg":"listening"'), 20_000)

    const post = (body: object) =>
      fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer client-secret-zzz" },
        body: JSON.stringify(body)
      }).then(async (r) => ({ status: r.status, text: await r.text() }), () => ({ status: 0, text: "" }))
    const burst = [
      ...Array.from({ length: 12 }, () => post({ model: "chat", messages: [] })),
      ...Array.from({ length: 6 }, () => post({ model: "stream-model", stream: true, messages: [] }))
    ]
    // SIGTERM while most requests are still in flight at the slow upstream.
    await waitFor(() => ok.requests.length >= 3, 10_000)
    child.kill("SIGTERM")
    const answers = await Promise.all(burst)
    expect(await exited).toBe(0)

    const reached = ok.requests.length + limited.requests.length + streaming.requests.length
    const ledger = new Database(db, { readonly: true })
    const rows = ledger.prepare("SELECT backend, outcome, prompt_tokens, completion_tokens, cost_usd FROM usage").all() as Array<{
      backend: string
      outcome: string
      prompt_tokens: number | null
      completion_tokens: number | null
      cost_usd: number | null
    }>
    ledger.close()
    expect(rows).toHaveLength(reached)
    const count = (backend: string) => rows.filter((r) => r.backend === backend).length
    expect(count("ok")).toBe(ok.requests.length)
    expect(count("limited")).toBe(limited.requests.length)
    expect(count("streaming")).toBe(streaming.requests.length)
    const served = rows.filter((r) => r.backend === "ok" && r.outcome === "success")
    expect(served).toHaveLength(answers.slice(0, 12).filter((a) => a.status === 200).length)
    expect(answers.every((a) => a.status === 200)).toBe(true)
    for (const r of served) expect([r.prompt_tokens, r.completion_tokens, r.cost_usd]).toEqual([11, 7, 0.011 + 0.014])
    for (const r of rows.filter((r) => r.backend === "streaming" && r.outcome === "success")) {
      expect([r.prompt_tokens, r.completion_tokens]).toEqual([5, 2])
    }
    // No plaintext key in the database, its WAL, the key file — nor in any log line.
    for (const f of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, f))
      for (const k of keys) expect(bytes.includes(Buffer.from(k)), `${k} in ${f}`).toBe(false)
    }
    for (const k of [...keys, "client-secret-zzz"]) expect(out).not.toContain(k)
    // The rows came through the ledger's writer thread, not its fallback on the main thread.
    expect(out).not.toContain("usage writer thread failed")
  }, 60_000)

  it("storage.usage_ledger: false writes no rows; the default writes one per attempt", async () => {
    const m = await MockUpstream.start({ kind: "json", body: { ok: true, usage: { prompt_tokens: 1, completion_tokens: 1 } } })
    cleanups.push(() => m.close())
    const rowsWith = async (usageLedger: boolean | undefined) => {
      const db = join(mkdtempSync(join(tmpdir(), "sidecar-ledger-")), "sidecar.db")
      const storage = usageLedger === undefined ? { sqlite: db } : { sqlite: db, usage_ledger: usageLedger }
      const s = await start({ logging: { level: "off" }, storage, backends: [{ id: "p1", pool: "primary", base_url: `${m.url}/v1` }] })
      for (let i = 0; i < 3; i++) {
        expect((await fetch(`${s.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m" }) })).status).toBe(200)
      }
      await s.stop()
      const ledger = new Database(db, { readonly: true })
      const n = (ledger.prepare("SELECT count(*) AS n FROM usage").get() as { n: number }).n
      ledger.close()
      return n
    }
    expect(await rowsWith(undefined)).toBe(3)
    expect(await rowsWith(false)).toBe(0)
  })
})
