// The config file adapter: defaults, the example file, `${VAR}` interpolation, env overrides,
// and that every invalid config names its field (all at once) without ever echoing a secret.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { ConfigError, type Env, load, loadWithSource, parse } from "../../src/adapters/config/ConfigFile.js"
import { SidecarConfig, toPolicy } from "../../src/adapters/config/SidecarConfig.js"
import { defaultPolicy } from "../../src/domain/Policy.js"

const ok = (text: string, env: Env = {}): SidecarConfig => {
  const r = parse(text, env, "test.yaml")
  if (Either.isLeft(r)) throw new Error(`expected a valid config, got:\n${r.left.message}`)
  return r.right
}

const fails = (text: string, env: Env = {}): ConfigError => {
  const r = parse(text, env, "test.yaml")
  if (Either.isRight(r)) throw new Error("expected the config to be rejected")
  return r.left
}

const problems = (text: string, env: Env = {}) => fails(text, env).problems

const backend = (extra = "") => `
backends:
  - id: nim-1
    pool: primary
    base_url: https://integrate.api.nvidia.com/v1
${extra}
`

const examplePath = new URL("../../sidecar.example.yaml", import.meta.url)

describe("config defaults", () => {
  it("an empty file gives SPEC §4's defaults and no backends", () => {
    const c = ok("")
    expect(c.server).toMatchObject({ host: "127.0.0.1", port: 8080, maxBodyBytes: 10485760, shutdownGraceMs: 10000 })
    expect(c.storage.sqlite).toBe("./data/sidecar.db")
    expect(c.storage.usageRetentionDays).toBe(90)
    expect(c.security.adminToken).toBeUndefined()
    expect(c.security.proxyKeys).toEqual([])
    expect(c.logging.level).toBe("info")
    expect(c.backends).toEqual([])
    expect(toPolicy(c)).toEqual(defaultPolicy)
  })

  it.effect("no file at the default path → built-in defaults", () =>
    Effect.gen(function*() {
      const cwd = process.cwd()
      process.chdir(mkdtempSync(join(tmpdir(), "sidecar-cfg-")))
      try {
        const loaded = yield* loadWithSource({})
        expect(loaded.source).toBeUndefined()
        expect(loaded.config.backends).toEqual([])
        expect(loaded.config.server.port).toBe(8080)
        const withOverride = yield* load({ SIDECAR_PORT: "9001" })
        expect(withOverride.server.port).toBe(9001)
      } finally {
        process.chdir(cwd)
      }
    }))

  it.effect("a missing file at an explicit SIDECAR_CONFIG is an error naming the path", () =>
    Effect.gen(function*() {
      const path = join(tmpdir(), "definitely-not-here", "sidecar.yaml")
      const error = yield* Effect.flip(load({ SIDECAR_CONFIG: path }))
      expect(error).toBeInstanceOf(ConfigError)
      expect(error.message).toContain(path)
      expect(error.message).toContain("file not found")
    }))

  it.effect("load reads the file named by SIDECAR_CONFIG", () =>
    Effect.gen(function*() {
      const path = join(mkdtempSync(join(tmpdir(), "sidecar-cfg-")), "s.yaml")
      writeFileSync(path, `server: { port: 9100 }\n${backend("    api_key: ${K}")}`)
      const loaded = yield* loadWithSource({ SIDECAR_CONFIG: path, K: "sk-file" })
      expect(loaded.source).toBe(path)
      expect(loaded.config.server.port).toBe(9100)
      expect(Redacted.value(loaded.config.backends[0]!.apiKey!)).toBe("sk-file")
      const error = yield* Effect.flip(load({ SIDECAR_CONFIG: path }))
      expect(error.message).toMatch(/^Invalid configuration .*s\.yaml:\n {2}- backends\[0]\.api_key: environment variable K is not set$/)
    }))
})

describe("sidecar.example.yaml", () => {
  const text = readFileSync(examplePath, "utf8")
  const env: Record<string, string> = {}
  for (const m of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) env[m[1]!] = `dummy-${m[1]}-value`

  it("parses, with two primary backends and one fallback", () => {
    const c = ok(text, env)
    expect(c.backends.map((b) => [b.id, b.pool])).toEqual([
      ["nim-1", "primary"],
      ["nim-2", "primary"],
      ["together-1", "fallback"]
    ])
    expect(Redacted.value(c.backends[0]!.apiKey!)).toBe("dummy-NIM_KEY_1-value")
    expect(Redacted.value(c.security.adminToken!)).toBe("dummy-SIDECAR_ADMIN_TOKEN-value")
  })

  it("states the real defaults", () => {
    const c = ok(text, env)
    const d = ok("")
    expect(c.server).toEqual(d.server)
    expect(c.storage).toEqual(d.storage)
    expect(c.logging).toEqual(d.logging)
    expect(toPolicy(c)).toEqual(toPolicy(d))
    const [nim1, nim2] = c.backends
    expect({ ...nim1, id: "x", apiKey: undefined, models: undefined }).toEqual({
      ...nim2,
      id: "x",
      apiKey: undefined,
      models: undefined
    })
  })

  it("its commented vLLM continuation backend parses once uncommented", () => {
    const at = text.indexOf("  # - id: vllm-local")
    const block = text.slice(at).split("\n").map((l) => l.replace(/^ {2}# /, "  ")).join("\n")
    const vllm = ok(text.slice(0, at) + block, env).backends[3]!
    expect([vllm.id, vllm.pool, vllm.prefillContinuation, vllm.continuationExtraBody]).toEqual([
      "vllm-local",
      "fallback",
      true,
      { continue_final_message: true, add_generation_prompt: false }
    ])
  })

  it("names the variables it needs when they are not set", () => {
    const ps = problems(text, {})
    expect(ps).toContain("security.admin_token: environment variable SIDECAR_ADMIN_TOKEN is not set")
    expect(ps).toContain("backends[2].api_key: environment variable TOGETHER_KEY_1 is not set")
    expect(ps).toHaveLength(4)
  })
})

describe("${VAR} interpolation", () => {
  it("replaces several references in one string and in nested values", () => {
    const c = ok(
      `${backend()}    base_url: "\${SCHEME}://\${HOST}:\${PORT}/v1"
    continuation_extra_body: { chat_template_kwargs: { mode: "\${MODE}" }, stop: ["\${STOP}"] }
    models:
      m: { upstream: "\${ORG}/\${MODEL}-instruct" }
`.replace(/^ {4}base_url: https.*\n/m, ""),
      { SCHEME: "http", HOST: "gpu-box", PORT: "8000", MODE: "fast", STOP: "END", ORG: "meta", MODEL: "llama" }
    )
    const b = c.backends[0]!
    expect(b.baseUrl).toBe("http://gpu-box:8000/v1")
    expect(b.continuationExtraBody).toEqual({ chat_template_kwargs: { mode: "fast" }, stop: ["END"] })
    expect(b.models?.["m"]?.upstream).toBe("meta/llama-instruct")
  })

  it("an unquoted whole reference takes the variable's type; secrets and quoted values stay strings", () => {
    const c = ok(backend(`    rpm: \${RPM}\n    enabled: \${ON}\n    api_key: \${KEY}`) + `server: { host: "\${H}" }\n`, {
      RPM: "40",
      ON: "false",
      KEY: "12345678",
      H: "10.0.0.1"
    })
    expect(c.backends[0]!.rpm).toBe(40)
    expect(c.backends[0]!.enabled).toBe(false)
    expect(Redacted.value(c.backends[0]!.apiKey!)).toBe("12345678")
    expect(c.server.host).toBe("10.0.0.1")
  })

  it("$${ is a literal ${", () => {
    const c = ok(`${backend()}    continuation_extra_body: { template: "$\${NOT_A_VAR}" }\n`)
    expect(c.backends[0]!.continuationExtraBody).toEqual({ template: "${NOT_A_VAR}" })
  })

  it("a missing variable is an error naming it and the value's path; all are reported at once", () => {
    const ps = problems(`${backend("    api_key: ${NIM_KEY_1}")}security: { proxy_keys: ["a-\${PK}-b"] }\n`)
    expect(ps).toEqual([
      "backends[0].api_key: environment variable NIM_KEY_1 is not set",
      "security.proxy_keys[0]: environment variable PK is not set"
    ])
  })

  it("a malformed reference is reported", () => {
    expect(problems(`storage: { sqlite: "\${DB:-x.db}" }`)).toEqual([
      "storage.sqlite: unsupported reference ${DB:-x.db} (only ${NAME} is supported)"
    ])
  })
})

describe("invalid configs name the field", () => {
  const cases: ReadonlyArray<readonly [string, string, Env, RegExp]> = [
    ["bad pool", backend().replace("pool: primary", "pool: fallbak"), {}, /^backends\[0]\.pool: unknown pool "fallbak" \(routing\.pools: primary, fallback\)$/],
    ["duplicate id", backend() + backend().replace("backends:\n", ""), {}, /^backends\[1]\.id: duplicate id "nim-1" \(also backends\[0]\)$/],
    ["negative rpm", backend("    rpm: -5"), {}, /^backends\[0]\.rpm: .*positive.*-5/],
    ["non-URL base_url", backend().replace(/base_url: .*/, "base_url: not a url"), {}, /^backends\[0]\.base_url: .*URL.*"not a url"/],
    ["unknown key", backend("    rpn: 40"), {}, /^backends\[0]\.rpn: unknown key \(allowed: id, pool, base_url/],
    ["unknown top-level key", "sever: { port: 1 }", {}, /^sever: unknown key/],
    ["wrong type for cooldown.base_ms", "cooldown: { base_ms: 5s }", {}, /^cooldown\.base_ms: expected a number, got "5s"$/],
    ["port out of range", "server: { port: 70000 }", {}, /^server\.port: .*1 and 65535.*70000/],
    ["negative usage retention", "storage: { usage_retention_days: -1 }", {}, /^storage\.usage_retention_days: .*-1/],
    ["fractional usage retention", "storage: { usage_retention_days: 1.5 }", {}, /^storage\.usage_retention_days: .*1\.5/],
    ["bad log level", "logging: { level: verbose }", {}, /^logging\.level: must be one of: trace, debug, info, warn, error, fatal, off, got "verbose"$/],
    ["bad SIDECAR_PORT", "", { SIDECAR_PORT: "80a" }, /^SIDECAR_PORT: must be an integer between 1 and 65535, got "80a"$/],
    ["SIDECAR_PORT out of range", "", { SIDECAR_PORT: "0" }, /^SIDECAR_PORT: /],
    ["bad SIDECAR_LOG_LEVEL", "", { SIDECAR_LOG_LEVEL: "loud" }, /^SIDECAR_LOG_LEVEL: must be one of: /],
    ["missing required field", "backends: [{ id: a, pool: primary }]", {}, /^backends\[0]\.base_url: is required$/],
    ["empty pools", "routing: { pools: [] }", {}, /^routing\.pools: must not be empty$/],
    ["section of the wrong shape", "cooldown: 5", {}, /^cooldown: expected a mapping, got 5$/],
    ["file not a mapping", "- a\n- b", {}, /^top level: expected a mapping, got a list$/]
  ]
  for (const [name, text, env, expected] of cases) {
    it(name, () => {
      const error = fails(text, env)
      expect(error.problems.some((p) => expected.test(p)), error.message).toBe(true)
      expect(error.message.startsWith("Invalid configuration test.yaml:\n  - ")).toBe(true)
    })
  }

  it("reports several problems together in one error", () => {
    const ps = problems(
      `server: { port: 0 }\nlogging: { level: loud }\ncooldown: { base_ms: x }\n${backend("    rpm: -1\n    extra: 1")}` +
        backend().replace("backends:\n", "").replace("pool: primary", "pool: nope"),
      { SIDECAR_PORT: "x", MISSING: undefined }
    )
    expect(ps.map((p) => p.split(":")[0])).toEqual(
      expect.arrayContaining([
        "server.port",
        "logging.level",
        "cooldown.base_ms",
        "backends[0].rpm",
        "backends[0].extra",
        "backends[1].id",
        "backends[1].pool",
        "SIDECAR_PORT"
      ])
    )
    expect(ps).toHaveLength(8)
  })

  it("a YAML syntax error names the line", () => {
    const ps = problems("server:\n  port: 8080\n  host: [a, b\nrouting: {\n")
    expect(ps[0]).toMatch(/^YAML syntax error at line \d+, column \d+: /)
    expect(problems("server:\n  port: 1\n  port: 2\n")[0]).toMatch(/line 3, column 3: Map keys must be unique/)
  })
})

describe("secrets never appear in an error message", () => {
  const secret = "sk-SUPER-SECRET-0123456789"
  const texts: ReadonlyArray<readonly [string, string]> = [
    ["api_key of a wrong type", backend("    api_key: [sk-SUPER-SECRET-0123456789]")],
    ["api_key numeric", backend("    api_key: 123456789012")],
    ["admin_token of a wrong type", "security: { admin_token: { v: sk-SUPER-SECRET-0123456789 } }"],
    ["proxy_keys not a list", "security: { proxy_keys: sk-SUPER-SECRET-0123456789 }"],
    ["proxy_keys with a bad element", "security: { proxy_keys: [sk-SUPER-SECRET-0123456789, 5, ''] }"],
    ["backends as a mapping holding a key", "backends: { id: a, api_key: sk-SUPER-SECRET-0123456789 }"],
    ["a key reused in a bad place", `${backend("    api_key: sk-SUPER-SECRET-0123456789")}storage: { sqlite: 12 }\nlogging: { level: sk-SUPER-SECRET-0123456789 }`]
  ]
  for (const [name, text] of texts) {
    it(name, () => {
      const error = fails(text)
      expect(error.message).not.toContain(secret)
      expect(error.message).not.toContain("123456789012")
      expect(error.problems.length).toBeGreaterThan(0)
    })
  }

  it("a key from the environment is not echoed either", () => {
    const error = fails(`${backend("    api_key: ${K}")}logging: { level: "\${K}" }`, { K: secret })
    expect(error.message).not.toContain(secret)
    expect(error.message).toContain("logging.level")
  })

  it("an empty admin_token disables the admin API; an empty proxy key is an error", () => {
    expect(ok("security: { admin_token: '${T}' }", { T: "" }).security.adminToken).toBeUndefined()
    expect(problems("security: { proxy_keys: [''] }")).toEqual(["security.proxy_keys[0]: must not be empty"])
  })
})

describe("environment overrides", () => {
  it("SIDECAR_HOST, SIDECAR_PORT, SIDECAR_DB and SIDECAR_LOG_LEVEL win over the file", () => {
    const c = ok("server: { host: 127.0.0.1, port: 8080 }\nstorage: { sqlite: a.db }\nlogging: { level: info }", {
      SIDECAR_HOST: "0.0.0.0",
      SIDECAR_PORT: "9000",
      SIDECAR_DB: "/var/lib/sidecar/s.db",
      SIDECAR_LOG_LEVEL: "DEBUG"
    })
    expect(c).toBeInstanceOf(SidecarConfig)
    expect(c.server).toMatchObject({ host: "0.0.0.0", port: 9000 })
    expect(c.storage.sqlite).toBe("/var/lib/sidecar/s.db")
    expect(c.logging.level).toBe("debug")
  })

  it("empty overrides are ignored", () => {
    expect(ok("", { SIDECAR_PORT: "", SIDECAR_HOST: " " }).server).toMatchObject({ host: "127.0.0.1", port: 8080 })
  })
})
