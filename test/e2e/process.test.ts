// `npm start` as a user runs it: the bundle it builds, run with its node flags; a real process,
// its exit code and stderr for invalid configs, and a graceful SIGTERM that lets an in-flight
// request finish before exiting 0.
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
// @ts-expect-error better-sqlite3 ships no types; the test only needs prepare/get/close.
import Database from "better-sqlite3"
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startFlags } from "../../bench/children.js"
import { MockUpstream } from "../fakes/MockUpstream.js"

const root = join(import.meta.dirname, "..", "..")
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

const configFile = (yaml: string) => {
  const dir = mkdtempSync(join(tmpdir(), "sidecar-e2e-"))
  const file = join(dir, "sidecar.yaml")
  writeFileSync(file, yaml)
  return file
}

beforeAll(() => {
  const start = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts["start"]
  expect(start).toMatch(/^node scripts\/build\.mjs && node (--\S+ )*dist\/main\.js$/)
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: root, stdio: "inherit" })
}, 60_000)

const launch = (env: Record<string, string>) => {
  const child = spawn(process.execPath, [...startFlags(root), "dist/main.js"], {
    cwd: root,
    env: { PATH: process.env["PATH"] ?? "", SIDECAR_DB: join(mkdtempSync(join(tmpdir(), "sidecar-db-")), "sidecar.db"), ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  cleanups.push(() => void child.kill("SIGKILL"))
  return { child, exited, out: () => stdout, err: () => stderr }
}

const waitFor = async (pred: () => boolean, ms: number) => {
  const until = Date.now() + ms
  while (!pred()) {
    if (Date.now() > until) throw new Error("timed out waiting")
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe("the sidecar process", () => {
  it("an invalid config exits 1, naming every bad field at once", async () => {
    const p = launch({
      SIDECAR_CONFIG: configFile([
        "server: { port: 70000 }",
        "cooldown: { base_ms: soon }",
        "backends:",
        "  - { id: p1, pool: fallbak, base_url: http://x/v1 }",
        "  - { id: p2, pool: primary, base_url: not-a-url, api_key: sk-should-never-print }",
        ""
      ].join("\n"))
    })
    expect(await p.exited).toBe(1)
    for (const field of ["server.port", "cooldown.base_ms", "backends[0].pool: unknown pool \"fallbak\"", "backends[1].base_url"]) {
      expect(p.err()).toContain(field)
    }
    expect(p.err() + p.out()).not.toContain("sk-should-never-print")
  }, 30_000)

  it("a missing ${VAR} exits 1 naming the variable", async () => {
    const p = launch({
      SIDECAR_CONFIG: configFile("backends:\n  - { id: p1, pool: primary, base_url: http://x/v1, api_key: \"${NOT_SET_ANYWHERE}\" }\n")
    })
    expect(await p.exited).toBe(1)
    expect(p.err()).toContain("NOT_SET_ANYWHERE")
  }, 30_000)

  it("SIGTERM: stops accepting, lets the in-flight request finish, exits 0", async () => {
    const m = await MockUpstream.start({ kind: "json", body: { ok: true }, delayMs: 800 })
    cleanups.push(() => m.close())
    const port = 20_000 + Math.floor(Math.random() * 20_000)
    const db = join(mkdtempSync(join(tmpdir(), "sidecar-db-")), "sidecar.db")
    const q = launch({
      SIDECAR_CONFIG: configFile(`backends:\n  - { id: p1, pool: primary, base_url: "${m.url}/v1", api_key: sk-e2e-secret-key }\n`),
      SIDECAR_PORT: String(port),
      SIDECAR_DB: db
    })
    await waitFor(() => q.out().includes("listening"), 15_000)
    const inFlight = fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m" }) })
    await waitFor(() => m.requests.length === 1, 5000)
    // The bundle serves the Prometheus exporter (loaded from outside it) too.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    expect(metrics).toMatch(/^sidecar_backend_in_cooldown\{backend="p1"/m)
    q.child.kill("SIGTERM")
    const res = await inFlight
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true })
    expect(await q.exited).toBe(0)
    expect(q.out()).toContain('"msg":"stopped"')
    // Each event is logged once (one logger, not two).
    expect(q.out().match(/"msg":"listening"/g)).toHaveLength(1)
    // Every line is JSON, and the key never appears in the logs.
    for (const line of q.out().trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow()
    expect(q.out() + q.err()).not.toContain("sk-e2e-secret-key")
    // The request's usage row was written, by the ledger's writer thread (which runs in the bundle).
    expect(q.out()).not.toContain("usage writer thread failed")
    const file = new Database(db, { readonly: true }) as { prepare(s: string): { get(): { n: number } }; close(): void }
    expect(file.prepare("SELECT count(*) AS n FROM usage").get().n).toBe(1)
    file.close()
  }, 30_000)
})
