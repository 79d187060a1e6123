/**
 * Summarizes a V8 .cpuprofile (from `npm run bench -- --cpu-prof`): busy time by module group,
 * the top functions by self time, and Sidecar's own functions by inclusive time.
 */
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { bundleMap, packageOf } from "./bundle-map.js"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}
interface Profile { readonly nodes: ReadonlyArray<ProfileNode>; readonly samples: ReadonlyArray<number>; readonly timeDeltas: ReadonlyArray<number> }

const args = process.argv.slice(2).filter((a) => !a.startsWith("--callers="))
const callersOf = process.argv.slice(2).find((a) => a.startsWith("--callers="))?.slice(10)
const file = args[0]
const top = Number(args[1] ?? 30)
if (file === undefined) {
  console.error("usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=30] [--callers=FUNCTION]")
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile

/** The bundle's lines, mapped back to the file each came from (Effect is bundled with Sidecar's src/). */
const fileAt = bundleMap(join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "main.js"))

/** Sidecar's own files (run from src/ by tsx, or bundled); else the package, node core or native. */
const group = (url: string, name: string, line = 0): string => {
  if (url.endsWith("/dist/main.js")) {
    const file = fileAt(line + 1)
    return packageOf(file) ?? `sidecar ${file}`
  }
  if (url === "") return name.startsWith("(") ? name : "(native/builtin)"
  const dist = /\/node_modules\/\.cache\/[^/]+\/src\/(.*)$/.exec(url)
  if (dist !== null) return `sidecar src/${dist[1]}`
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (nm !== null) return nm[1] ?? "node_modules"
  if (url.startsWith("node:")) return "node core"
  const src = /\/src\/(.*)$/.exec(url)
  return src !== null ? `sidecar src/${src[1]}` : url
}
/** The file a function is in, short: `effect/fiberRuntime.js`, `src/…`, `node:…`. */
const where = (url: string, name: string, line: number): string => {
  const g = group(url, name, line)
  if (g.startsWith("sidecar src/") || g.startsWith("(")) return g
  if (url.endsWith("/dist/main.js")) return fileAt(line + 1).replace(/^node_modules\//, "")
  const file = /([^/]+)$/.exec(url)?.[1] ?? url
  return url.startsWith("node:") ? url : `${g}/${file}`
}

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const key = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"} ${where(n.callFrame.url, n.callFrame.functionName, n.callFrame.lineNumber)}:${n.callFrame.lineNumber + 1}`

const selfUs = new Map<number, number>()
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))

let total = 0
let idle = 0
const groups = new Map<string, number>()
const selfFn = new Map<string, number>()
const inclusive = new Map<string, number>()
const stacks = new Map<string, number>()
for (const [id, us] of selfUs) {
  const n = byId.get(id)
  if (n === undefined) continue
  total += us
  if (n.callFrame.functionName === "(idle)") idle += us
  const g = group(n.callFrame.url, n.callFrame.functionName, n.callFrame.lineNumber)
  groups.set(g.startsWith("sidecar src/") ? "sidecar src (all)" : g, (groups.get(g.startsWith("sidecar src/") ? "sidecar src (all)" : g) ?? 0) + us)
  selfFn.set(key(n), (selfFn.get(key(n)) ?? 0) + us)
  if (callersOf !== undefined && n.callFrame.functionName === callersOf) {
    const chain: Array<string> = []
    for (let cur = parent.get(id); cur !== undefined && chain.length < 14; cur = parent.get(cur)) {
      const node = byId.get(cur)
      if (node !== undefined) chain.push(key(node))
    }
    stacks.set(chain.join("\n           <- "), (stacks.get(chain.join("\n           <- ")) ?? 0) + us)
  }
  // Inclusive: every distinct function on the stack gets the sample once.
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur)
    if (node === undefined) break
    const k = key(node)
    if (seen.has(k)) continue
    seen.add(k)
    inclusive.set(k, (inclusive.get(k) ?? 0) + us)
  }
}
const busy = total - idle
const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`
const list = (m: Map<string, number>, n: number, filter: (k: string) => boolean = () => true) =>
  [...m].filter(([k]) => filter(k) && !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, us]) => `  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`).join("\n")

console.log(`${file}\n  total ${(total / 1e6).toFixed(2)} s sampled, idle ${(idle / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s (percentages are of busy)`)
console.log(`\nBusy time by module (self):\n${list(groups, 20)}`)
console.log(`\nTop ${top} functions by self time:\n${list(selfFn, top)}`)
console.log(`\nSidecar src functions by inclusive time:\n${list(inclusive, top, (k) => k.includes("sidecar src/"))}`)
if (callersOf !== undefined) console.log(`\nStacks under ${callersOf} (self time):\n${list(stacks, 8)}`)
if (process.env["PROFILE_ALL"] !== undefined) console.log(`\nAll functions by inclusive time:\n${list(inclusive, top)}`)
