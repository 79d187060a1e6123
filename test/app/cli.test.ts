// The operator CLI: against a test Sidecar's admin API (`--url`), in direct mode over an injected
// storage Layer, and once as a real process through bin/sidecar.mjs.
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { createServer } from "node:net"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { runCli } from "../../src/app/cli/Cli.js"
import type { StorageLayer } from "../../src/app/cli/DirectClient.js"
import * as BackendRegistryMemory from "../../src/adapters/memory/BackendRegistryMemory.js"
import { type AdminSidecar, startAdminSidecar } from "../fakes/AdminSidecar.js"
import * as UsageReportsMemory from "../fakes/UsageReportsMemory.js"

const TOKEN = "cli-admin-token"
const KEY = "sk-from-env-Q7R8"
const now = Date.now()
const records = [
  UsageReportsMemory.attempt({ at: now - 60_000, backend: "a", model: "llama-70b", promptTokens: 1200, completionTokens: 300, costUsd: 0.0125 }),
  UsageReportsMemory.attempt({ at: now - 50_000, backend: "a", model: "mistral", promptTokens: 10, completionTokens: 5, costUsd: 0 }),
  UsageReportsMemory.attempt({ at: now - 40_000, backend: "b", model: "llama-70b", outcome: "rate_limited", status: 429 })
]

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

const sidecar = async (): Promise<AdminSidecar> => {
  const s = await startAdminSidecar({
    security: { admin_token: TOKEN },
    backends: [{ id: "a", pool: "primary", base_url: "https://a.example/v1", api_key: "sk-config-key-AAAA", rpm: 30 }]
  }, records)
  cleanups.push(s.stop)
  return s
}

interface Run {
  readonly code: number
  readonly out: Array<string>
  readonly err: Array<string>
}

const cli = async (argv: ReadonlyArray<string>, env: Record<string, string> = {}, loadStorage?: () => Promise<StorageLayer>): Promise<Run> => {
  const out: Array<string> = []
  const err: Array<string> = []
  const io = { out: (l: string) => void out.push(...l.split("\n")), err: (l: string) => void err.push(...l.split("\n")) }
  const code = await runCli(argv, env, io, loadStorage === undefined ? {} : { loadStorage })
  return { code, out, err }
}

const over = (s: AdminSidecar, ...argv: Array<string>) => cli(["--url", s.url, ...argv], { SIDECAR_ADMIN_TOKEN: TOKEN, MY_KEY: KEY })

/** A port nothing listens on (taken, then released). */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

const picked = (s: AdminSidecar, model: string) =>
  Effect.runPromise(s.fleet.pick({ model, pools: ["primary", "fallback"], mode: "direct" })).then(Option.map((t) => t.backend.id))

/** Every column of a table starts at the same offset on each line. */
const expectAligned = (lines: ReadonlyArray<string>, header: string, firstRow: string) => {
  const starts = [...lines[0]!.matchAll(/\S+/g)].map((m) => m.index)
  expect(lines[0]).toBe(header)
  expect(lines[1]!.startsWith(firstRow)).toBe(true)
  for (const line of lines.slice(1)) for (const at of starts) expect(line[at - 1] ?? " ", line).toBe(" ")
}

describe("sidecar CLI over the admin API (--url)", () => {
  it("backends list | add | disable | enable | remove, routing as it goes; the key never printed", async () => {
    const s = await sidecar()
    const list = await over(s, "backends", "list")
    expect(list).toMatchObject({ code: 0, err: [] })
    expect(list.out).toEqual([
      "ID  POOL     ENABLED  RPM  LEFT  STATE  KEY    MODELS  BASE_URL",
      "a   primary  yes       30    30  ok     …AAAA  *       https://a.example/v1"
    ])

    const add = await over(s, "backends", "add", "--id", "n1", "--pool", "fallback", "--base-url", "https://n1.example/v1",
      "--api-key-env", "MY_KEY", "--rpm", "12", "--model", "llama-70b=meta/llama-3.1-70b", "--model", "mistral")
    expect(add.code).toBe(0)
    expect(add.out[0]).toBe("Added backend n1 to pool fallback.")
    expect(add.out.slice(2)).toEqual([
      "ID  POOL      ENABLED  RPM  LEFT  STATE  KEY    MODELS                                 BASE_URL",
      "n1  fallback  yes       12    12  ok     …Q7R8  llama-70b=meta/llama-3.1-70b, mistral  https://n1.example/v1"
    ])
    expect(add.out.join("\n")).not.toContain(KEY)
    expect(await picked(s, "mistral")).toEqual(Option.some("a"))
    expect(await picked(s, "mistral")).toEqual(Option.some("a"))

    const both = await over(s, "backends", "list")
    expectAligned(both.out, "ID  POOL      ENABLED  RPM  LEFT  STATE  KEY    MODELS                                 BASE_URL", "a ")
    expect(both.out).toHaveLength(3)

    expect(await over(s, "backends", "disable", "a")).toMatchObject({ code: 0, out: ["Disabled backend a."] })
    expect(await picked(s, "mistral")).toEqual(Option.some("n1"))
    expect(await over(s, "backends", "enable", "a")).toMatchObject({ code: 0, out: ["Enabled backend a."] })
    expect(await over(s, "backends", "remove", "n1")).toMatchObject({ code: 0, out: ["Removed backend n1."] })
    expect((await over(s, "backends", "list")).out).toHaveLength(2)
    const json = await over(s, "backends", "list", "--json")
    expect(JSON.parse(json.out.join("\n")).backends.map((b: { id: string }) => b.id)).toEqual(["a"])
  })

  it("usage: an aligned table with a total row; --since/--until/--by reach the API", async () => {
    const s = await sidecar()
    const r = await over(s, "usage")
    expect(r.code).toBe(0)
    expect(r.out[0]).toMatch(/^Usage \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ to \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, by backend \(counts are upstream attempts\)$/)
    expect(r.out.slice(2)).toEqual([
      "BACKEND  REQUESTS  ERRORS  PROMPT_TOKENS  COMPLETION_TOKENS  COST_USD",
      "a               2       0           1210                305    0.0125",
      "b               1       1              0                  0    0.0000",
      "TOTAL           3       1           1210                305    0.0125"
    ])
    const byModel = await over(s, "usage", "--since", "2h", "--until", "now", "--by", "model")
    expect(byModel.out.slice(2).map((l) => l.split(/\s+/)[0])).toEqual(["MODEL", "llama-70b", "mistral", "TOTAL"])
    const q = s.usageQueries.at(-1)!
    expect(q.groupBy).toBe("model")
    expect(q.until - q.since).toBe(2 * 3_600_000)
  })

  it("errors: the server's message and exit 1; usage errors exit 2; no key echoed", async () => {
    const s = await sidecar()
    const bad = await over(s, "backends", "add", "--id", "x", "--pool", "nope", "--base-url", "https://x.example", "--api-key-env", "MY_KEY", "--rpm", "-3")
    expect(bad.code).toBe(1)
    expect(bad.err.join("\n")).toMatch(/^sidecar: rpm: expected a positive number, got -3; pool: unknown pool "nope"/)
    expect(bad.err.join("\n")).not.toContain(KEY)
    expect(await over(s, "backends", "remove", "ghost")).toMatchObject({ code: 1, err: ['sidecar: No backend with id "ghost"'] })
    const dup = await over(s, "backends", "add", "--id", "a", "--pool", "primary", "--base-url", "https://a.example")
    expect(dup).toMatchObject({ code: 1, err: ['sidecar: id: a backend with id "a" already exists'] })
    const badUsage = await over(s, "usage", "--since", "yesterday")
    expect(badUsage.code).toBe(1)
    expect(badUsage.err[0]).toMatch(/^sidecar: since: expected an ISO-8601 instant/)

    const wrongToken = await cli(["--url", s.url, "--token", "wrong", "backends", "list"])
    expect(wrongToken.code).toBe(1)
    expect(wrongToken.err[0]).toMatch(/Invalid or missing admin token: pass the admin token with --token or SIDECAR_ADMIN_TOKEN/)
    const port = await freePort()
    const unreachable = await cli(["--url", `http://127.0.0.1:${port}`, "backends", "list"])
    expect(unreachable).toMatchObject({ code: 1, err: [`sidecar: cannot reach Sidecar at http://127.0.0.1:${port} (ECONNREFUSED)`] })

    const usageErrors: Array<[ReadonlyArray<string>, RegExp]> = [
      [["backends", "add", "--api-key", KEY, "--id", "x"], /--api-key is refused/],
      [["backends", "add", "--pool", "primary", "--base-url", "https://x.example"], /--id is required/],
      [["backends", "add", "--id", "x", "--pool", "p", "--base-url", "u", "--rpm", "lots"], /--rpm: expected a number, got "lots"/],
      [["backends", "list", "--rpm", "3"], /--rpm is not an option of `backends list`/],
      [["backends", "frob"], /unknown subcommand `backends frob`/],
      [["backends", "disable"], /takes one backend id/],
      [["usage", "--colour", "x"], /unknown option --colour/],
      [["frob"], /unknown command "frob"/]
    ]
    for (const [argv, message] of usageErrors) {
      const r = await over(s, ...argv)
      expect(r.code, argv.join(" ")).toBe(2)
      expect(r.err.join("\n")).toMatch(message)
      expect(r.err.join("\n")).not.toContain(KEY)
    }
    expect((await over(s, "backends", "add", "--id", "x", "--pool", "primary", "--base-url", "https://x.example", "--api-key-env", "UNSET"))
      .err).toEqual(["sidecar: --api-key-env: the environment variable UNSET is not set"])
    expect(await cli(["--url", "ftp://x", "backends", "list"])).toMatchObject({ code: 2, err: ['sidecar: --url: expected an http(s) URL, got "ftp://x"'] })
    expect(await cli(["--token", "t", "backends", "list"])).toMatchObject({ code: 2, err: [expect.stringMatching(/--token needs --url/)] })
    expect((await cli([])).code).toBe(2)
    expect((await cli(["--help"])).code).toBe(0)
  })
})

describe("sidecar CLI without --url (direct mode)", () => {
  /** A config file in a fresh directory; its database file exists unless `withDatabase` is false. */
  const configFile = (withDatabase = true) => {
    const dir = mkdtempSync(join(tmpdir(), "sidecar-cli-"))
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
    const database = join(dir, "sidecar.db")
    if (withDatabase) writeFileSync(database, "")
    const path = join(dir, "sidecar.yaml")
    writeFileSync(path, `storage:\n  sqlite: ${database}\nrouting:\n  pools: [primary, spare]\n`)
    return { path, database }
  }
  const storage: StorageLayer = Layer.merge(BackendRegistryMemory.layer, UsageReportsMemory.layer(records))

  it("runs the same operations on the storage ports, without live state; pools from the config file", async () => {
    const env = { SIDECAR_CONFIG: configFile().path, MY_KEY: KEY }
    const add = await cli(["backends", "add", "--id", "d1", "--pool", "spare", "--base-url", "https://d.example", "--api-key-env", "MY_KEY"], env, async () => storage)
    expect(add.code).toBe(0)
    expect(add.out.slice(2)).toEqual([
      "ID  POOL   ENABLED  RPM  LEFT  STATE  KEY    MODELS  BASE_URL",
      "d1  spare  yes        -     -  -      …Q7R8  *       https://d.example"
    ])
    const wrongPool = await cli(["backends", "add", "--id", "d1", "--pool", "fallback", "--base-url", "https://d.example"], env, async () => storage)
    expect(wrongPool.err).toEqual(['sidecar: pool: unknown pool "fallback" (routing.pools: primary, spare)'])
    const usage = await cli(["usage", "--by", "pool"], env, async () => storage)
    expect(usage.out.slice(2, 4)).toEqual([
      "POOL     REQUESTS  ERRORS  PROMPT_TOKENS  COMPLETION_TOKENS  COST_USD",
      "primary         3       1           1210                305    0.0125"
    ])
  })

  it("no database, storage that fails to open, a bad config: a clear message suggesting --url, exit 1", async () => {
    const missing = configFile(false)
    const none = await cli(["backends", "list"], { SIDECAR_CONFIG: missing.path }, async () => storage)
    expect(none).toMatchObject({ code: 1, err: [`sidecar: no database at ${missing.database} (storage.sqlite in the config file, or SIDECAR_DB).`, expect.stringMatching(/^Use --url/)] })
    expect(existsSync(missing.database)).toBe(false)
    const failing = Layer.fail(new Error("database is locked")) as unknown as StorageLayer
    const r = await cli(["backends", "list"], { SIDECAR_CONFIG: configFile().path }, async () => failing)
    expect(r).toMatchObject({ code: 1, err: ["sidecar: cannot open storage: database is locked", expect.stringMatching(/^Use --url http:\/\/host:port/)] })
    const badConfig = await cli(["backends", "list"], { SIDECAR_CONFIG: "/nonexistent/sidecar.yaml" }, async () => storage)
    expect(badConfig.code).toBe(1)
    expect(badConfig.err[0]).toMatch(/^sidecar: Invalid configuration \/nonexistent\/sidecar.yaml/)
  })

  it.skipIf(!existsSync("src/adapters/sqlite/StorageLayer.ts"))("with the SQLite storage: add, list, disable, remove persist across runs", async () => {
    const { path } = configFile()
    const env = { SIDECAR_CONFIG: path, MY_KEY: KEY }
    const saved = process.env["SIDECAR_MASTER_KEY"]
    process.env["SIDECAR_MASTER_KEY"] = Buffer.alloc(32, 7).toString("base64")
    try {
      const add = await cli(["backends", "add", "--id", "s1", "--pool", "primary", "--base-url", "https://s.example/v1", "--api-key-env", "MY_KEY", "--rpm", "9"], env)
      expect(add).toMatchObject({ code: 0, err: [] })
      expect((await cli(["backends", "disable", "s1"], env)).code).toBe(0)
      const list = await cli(["backends", "list"], env)
      expect(list.out).toEqual([
        "ID  POOL     ENABLED  RPM  LEFT  STATE  KEY    MODELS  BASE_URL",
        "s1  primary  no         9     -  -      …Q7R8  *       https://s.example/v1"
      ])
      expect(readFileSync(path.replace("sidecar.yaml", "sidecar.db")).includes(KEY)).toBe(false)
      expect((await cli(["usage"], env)).out.at(-1)).toBe("TOTAL           0       0              0                  0    0.0000")
      expect((await cli(["backends", "remove", "s1"], env)).code).toBe(0)
      expect((await cli(["backends", "list"], env)).out).toEqual(["No backends."])
    } finally {
      if (saved === undefined) delete process.env["SIDECAR_MASTER_KEY"]
      else process.env["SIDECAR_MASTER_KEY"] = saved
    }
  })
})

describe("bin/sidecar.mjs", () => {
  const bin = (args: ReadonlyArray<string>, env: Record<string, string>) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ["bin/sidecar.mjs", ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr }))
    })

  it("runs as a process: lists over --url, exit codes 0 / 2", async () => {
    const s = await sidecar()
    const list = await bin(["--url", s.url, "backends", "list"], { SIDECAR_ADMIN_TOKEN: TOKEN })
    expect(list).toEqual({
      code: 0,
      stdout: "ID  POOL     ENABLED  RPM  LEFT  STATE  KEY    MODELS  BASE_URL\na   primary  yes       30    30  ok     …AAAA  *       https://a.example/v1\n",
      stderr: ""
    })
    const usage = await bin(["backends", "list", "--bogus"], {})
    expect(usage.code).toBe(2)
    expect(usage.stderr).toBe("sidecar: unknown option --bogus\n")
  })
})
