/**
 * `npx tsx bench/alloc.ts [requests=4000] [--stream] [--raw] [--survivors]` (ALLOC_TOP=n functions): bytes allocated per proxied request,
 * by module and by function, from V8's sampling heap profiler in a Sidecar started as `npm start`
 * runs it (or in the raw passthrough, with --raw). Unlike CPU time on this shared machine,
 * allocation per request is stable from run to run (±2%), so it shows what a change costs; and
 * garbage is a large share of Sidecar's CPU (scavenges, see README "Performance").
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Agent, request } from "undici"
import { bundleMap, packageOf } from "./bundle-map.js"
import { forkTs, freePort, killAll, sleep, spawnSidecar, waitHealthy } from "./children.js"
import { sidecarYaml } from "./options.js"
import { CLIENT_HEADERS, JSON_BODY, PATH } from "./protocol.js"

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<HeapNode>
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const args = process.argv.slice(2)
const requests = Number(args.find((a) => !a.startsWith("--")) ?? 4000)
const stream = args.includes("--stream")
const raw = args.includes("--raw")
/** Only what survived a scavenge (promoted, or alive at the end): the young objects that cost GC time. */
const survivors = args.includes("--survivors")
const body = stream ? JSON.stringify({ ...(JSON.parse(JSON_BODY) as object), stream: true }) : JSON_BODY

/** Closed loop: `n` requests over 50 keep-alive connections, each body read to its end. */
const drive = async (origin: string, n: number) => {
  const agent = new Agent({ connections: 50 })
  let sent = 0
  const worker = async () => {
    while (sent < n) {
      sent++
      const r = await request(`${origin}${PATH}`, { dispatcher: agent, method: "POST", headers: CLIENT_HEADERS, body })
      await r.body.text()
    }
  }
  await Promise.all(Array.from({ length: 50 }, worker))
  await agent.close()
}

/** Which package (or Sidecar's own src/) a profile frame belongs to, and where. */
const classifier = (fileAt: (line: number) => string) => (frame: HeapNode["callFrame"]): { module: string; where: string } => {
  const { url, lineNumber } = frame
  if (url === "") return { module: "(native)", where: "" }
  if (url.startsWith("node:")) return { module: "node core", where: url }
  if (url.endsWith("/dist/main.js")) {
    const file = fileAt(lineNumber + 1)
    return { module: packageOf(file) ?? "sidecar", where: `${file.replace(/^node_modules\//, "")}:${lineNumber + 1}` }
  }
  return { module: packageOf(url) ?? url.replace(/^.*\/(bench|src)\//, "$1/"), where: `${url.replace(/^.*node_modules\//, "")}:${lineNumber + 1}` }
}

const summarize = (profile: { head: HeapNode }, n: number, classify: ReturnType<typeof classifier>) => {
  const byModule = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let total = 0
  const walk = (node: HeapNode) => {
    const { module, where } = classify(node.callFrame)
    total += node.selfSize
    byModule.set(module, (byModule.get(module) ?? 0) + node.selfSize)
    const key = `${node.callFrame.functionName || "(anonymous)"} ${where}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize)
    for (const c of node.children) walk(c)
  }
  walk(profile.head)
  const rows = (m: Map<string, number>, k: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([key, bytes]) => `  ${(bytes / n).toFixed(0).padStart(7)} B  ${key}`).join("\n")
  console.log(`${survivors ? "surviving a scavenge" : "allocated"} per request: ${(total / n).toFixed(0)} B (${n} ${stream ? "streamed" : "JSON"} requests after a warm-up)`)
  console.log(`by module:\n${rows(byModule, 8)}`)
  console.log(`top functions (self):\n${rows(byFunction, Number(process.env["ALLOC_TOP"] ?? 25))}`)
}

const main = async () => {
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: root, stdio: "inherit" })
  const dir = mkdtempSync(join(tmpdir(), "sidecar-alloc-"))
  const out = join(dir, "heap.json")
  process.env["HEAP_OUT"] = out
  if (survivors) process.env["HEAP_SURVIVORS"] = "1"
  const sampler = ["--import", join(root, "bench", "heap-sampler.mjs")]
  const mock = await forkTs(root, "mock-upstream.ts", [])
  let origin: string
  let pid: number | undefined
  if (raw) {
    const proxy = await forkTs(root, "raw-proxy.ts", [`http://127.0.0.1:${mock.port}`, "bench-key"], sampler)
    origin = `http://127.0.0.1:${proxy.port}`
    pid = proxy.child.pid
  } else {
    const port = await freePort()
    const config = join(dir, "sidecar.yaml")
    writeFileSync(config, sidecarYaml(mock.port, port, "warn", join(dir, "sidecar.db")))
    const child = spawnSidecar(root, "dist/main.js", config, port, join(dir, "sidecar.log"), sampler)
    origin = `http://127.0.0.1:${port}`
    if (!(await waitHealthy(`${origin}/readyz`, child, 30_000))) throw new Error(`Sidecar did not start; see ${dir}/sidecar.log`)
    pid = child.pid
  }
  await drive(origin, 2000) // warm-up: JIT, pools, caches
  process.kill(pid as number, "SIGUSR2")
  await sleep(500)
  await drive(origin, requests)
  process.kill(pid as number, "SIGUSR2")
  for (let i = 0; i < 120 && !existsSync(out); i++) await sleep(500)
  await sleep(1000) // the file is written in one call; let it finish
  summarize(JSON.parse(readFileSync(out, "utf8")) as { head: HeapNode }, requests, classifier(bundleMap(join(root, "dist", "main.js"))))
  await killAll()
}

main().catch(async (e: unknown) => {
  console.error(e)
  await killAll()
  process.exit(1)
})
