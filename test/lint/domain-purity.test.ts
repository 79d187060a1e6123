// The lint that keeps src/domain pure is itself tested: a probe file breaking each rule must be
// reported, and the real domain must be clean. (npm test also runs the lint over the whole tree.)
import { describe, expect, it } from "@effect/vitest"
import { ESLint } from "eslint"
import { join } from "node:path"

const root = join(import.meta.dirname, "..", "..")
const eslint = new ESLint({ cwd: root })

const lint = async (path: string, code: string) => {
  const [result] = await eslint.lintText(code, { filePath: join(root, path) })
  return (result?.messages ?? []).map((m) => m.message)
}

describe("src/domain purity lint", () => {
  it.each([
    ["import { readFileSync } from \"node:fs\"\nexport const x = readFileSync", "src/domain imports only"],
    ["import { HttpClient } from \"@effect/platform\"\nexport const x = HttpClient", "src/domain imports only"],
    ["import { x } from \"../adapters/memory/FleetStoreMemory.js\"\nexport const y = x", "must not reach outside"],
    ["export const now = Date.now()", "Clock.currentTimeMillis"],
    ["export const r = Math.random()", "Random"],
    ["export const d = new Date()", "wall clock"],
    ["setTimeout(() => {}, 10)", "Effect.sleep"],
    ["export const e = process.env", "no process"],
    ["console.log(1)", "Logger"]
  ])("reports %j", async (code, message) => {
    const messages = await lint("src/domain/Probe.ts", code)
    expect(messages.join("\n")).toContain(message)
  })

  it("allows effect and other domain modules", async () => {
    expect(await lint("src/domain/Probe.ts", "import { Effect } from \"effect\"\nimport { Backend } from \"./Backend.js\"\nexport const x = [Effect, Backend]")).toEqual([])
  })

  it("a port may import the domain, not what lies beyond it", async () => {
    expect(await lint("src/domain/ports/Probe.ts", "import { Backend } from \"../Backend.js\"\nexport const x = Backend")).toEqual([])
    const out = await lint("src/domain/ports/Probe.ts", "import { layer } from \"../../adapters/memory/FleetStoreMemory.js\"\nexport const x = layer")
    expect(out.join()).toContain("must not reach outside")
  })

  it("reports console output anywhere in src", async () => {
    expect((await lint("src/adapters/http/Probe.ts", "console.log(1)")).join()).toContain("console")
  })
})
