/**
 * `npm run bench`: mock upstream, raw node proxy and Sidecar (real entrypoint), each its own process on
 * 127.0.0.1, measured in interleaved rounds (saturation, fixed rate, SSE, buffering) plus RSS at 1,000 streams.
 */
import { execFileSync } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { request } from "undici"
import { ask, forkTs, freePort, killAll, killAllNow, sleep, spawnSidecar, waitExit, waitHealthy } from "./children.js"
import { type Options, parseOptions, type Phase, sidecarYaml } from "./options.js"
import { clockTicks, cpuWindow, rssMb, rssSampler } from "./procstat.js"
import { CLIENT_HEADERS, type ClosedResult, type HoldResult, JSON_BODY, PATH, type RateResult, type SseResult } from "./protocol.js"
import { checks, type HoldSample, overheadChecks, printChecks, type RoundSample, type SatSample, summarize, table } from "./report.js"
import { findWrk, runWrk, writeWrkScript } from "./wrk.js"

interface Target { readonly name: string; readonly origin: string; readonly pid: number | undefined; readonly child?: ChildProcess }

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const say = (s: string) => console.log(s)
const load1 = () => loadavg().map((x) => x.toFixed(2)).join(" ")

const startSidecar = async (opts: Options, dir: string, upstreamPort: number, level: string, usageLedger = true): Promise<Target> => {
  const port = await freePort()
  const name = `sidecar${level === "warn" ? "" : `-${level}`}${usageLedger ? "" : "-nousage"}`
  const config = join(dir, `${name}.yaml`)
  writeFileSync(config, sidecarYaml(upstreamPort, port, level, join(dir, `${name}.db`), usageLedger))
  const log = join(dir, `${name}.log`)
  const prof = opts.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${join(dir, `prof-${name}`)}`] : []
  for (let attempt = 1; attempt <= 2; attempt++) {
    const child = spawnSidecar(root, opts.entry, config, port, log, prof)
    if (await waitHealthy(`http://127.0.0.1:${port}/readyz`, child, 30_000)) {
      say(`${name}: pid ${child.pid}, port ${port}, logging.level ${level}, log ${log}`)
      return { name, origin: `http://127.0.0.1:${port}`, pid: child.pid, child }
    }
    child.kill("SIGKILL")
    say(`${name} did not become ready (attempt ${attempt}); log tail:\n${readFileSync(log, "utf8").slice(-2000)}`)
    if (attempt === 1) {
      say("retrying in 60 s (src/ may be mid-edit)")
      await sleep(60_000)
    }
  }
  throw new Error(`${name} failed to start twice; see ${log}`)
}

const main = async (opts: Options) => {
  // The default entry is the compiled build, exactly what `npm start` runs: build it first.
  if (opts.entry === "dist/main.js") execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: root, stdio: "inherit" })
  const dir = mkdtempSync(join(tmpdir(), "sidecar-bench-"))
  const wrk = opts.useWrk ? findWrk() : undefined
  const script = join(dir, "post.lua")
  writeWrkScript(script)
  const loadBefore = load1()
  say(`bench: temp dir ${dir}; saturation generator: ${wrk === undefined ? "undici closed loop (bench/load.ts)" : `wrk (${wrk})`}; ` +
    `CLK_TCK ${clockTicks}; load average ${loadBefore} (the machine is shared: compare same-round ratios, not absolutes)`)

  const mock = await forkTs(root, "mock-upstream.ts", [])
  const upstream = `http://127.0.0.1:${mock.port}`
  const targets: Array<Target> = []
  if (opts.targets.includes("direct")) targets.push({ name: "direct", origin: upstream, pid: undefined })
  if (opts.targets.includes("raw")) {
    const raw = await forkTs(root, "raw-proxy.ts", [upstream, "bench-key"])
    targets.push({ name: "raw", origin: `http://127.0.0.1:${raw.port}`, pid: raw.child.pid, child: raw.child })
  }
  if (opts.targets.includes("sidecar")) {
    for (const level of opts.logLevels) targets.push(await startSidecar(opts, dir, mock.port, level))
    if (opts.usageOff) targets.push(await startSidecar(opts, dir, mock.port, opts.logLevels[0] ?? "warn", false))
  }
  const load = (await forkTs(root, "load.ts", [])).child
  say(`mock upstream ${upstream} (pid ${mock.child.pid}); load generator pid ${load.pid}`)

  // Sanity: every target answers a JSON request and one complete stream, before anything is timed.
  for (const t of targets) {
    const r = await request(`${t.origin}${PATH}`, { method: "POST", headers: CLIENT_HEADERS, body: JSON_BODY, headersTimeout: 10_000 })
    const text = await r.body.text()
    if (r.statusCode !== 200 || !text.includes("chat.completion")) throw new Error(`${t.name}: sanity request got ${r.statusCode} ${text.slice(0, 300)}`)
    const s = await ask<SseResult>(load, { kind: "sse", origin: t.origin, concurrency: 1, durationMs: 10_000, maxStreams: 1, events: opts.events, gapMs: 0, eventTimes: true, staggerMs: 0 }, 20_000)
    if (s.streams !== 1 || s.incomplete !== 0 || s.eventsSeen !== opts.events) throw new Error(`${t.name}: sanity stream failed ${JSON.stringify(s)}`)
  }

  const sat = async (t: Target, durationMs: number): Promise<SatSample> => {
    const cpu = cpuWindow(t.pid)
    const r: ClosedResult = wrk === undefined
      ? await ask<ClosedResult>(load, { kind: "closed", origin: t.origin, connections: opts.connections, durationMs }, durationMs + 30_000)
      : await runWrk(wrk, script, t.origin, opts.connections, durationMs)
    const cpuUs = cpu.stop()
    return { rps: r.requests / (r.elapsedMs / 1000), requests: r.requests, errors: r.errors, cpuUsPerReq: cpuUs / r.requests }
  }
  const rate = (t: Target, durationMs: number) =>
    ask<RateResult>(load, { kind: "rate", origin: t.origin, rate: opts.rate, durationMs, connections: 256 }, durationMs + 30_000)
  const sse = async (t: Target, durationMs: number): Promise<NonNullable<RoundSample["sse"]>> => {
    const cpu = cpuWindow(t.pid)
    const r = await ask<SseResult>(load, {
      kind: "sse", origin: t.origin, concurrency: opts.sseConcurrency, durationMs, maxStreams: 1e9, events: opts.events, gapMs: opts.sseGapMs, eventTimes: false, staggerMs: 0
    }, durationMs + 60_000)
    return { ...r, cpuUsPerStream: cpu.stop() / r.streams }
  }
  const gap = (t: Target) =>
    ask<SseResult>(load, {
      kind: "sse", origin: t.origin, concurrency: opts.gapConcurrency, durationMs: 120_000, maxStreams: opts.gapStreams, events: opts.events, gapMs: opts.gapMs, eventTimes: true,
      staggerMs: (opts.events * opts.gapMs) / opts.gapConcurrency
    }, 180_000)

  const run = async (t: Target, phase: Phase, sample: RoundSample | undefined, scale: number) => {
    const ms = (x: number) => Math.max(500, Math.round(x * scale))
    switch (phase) {
      case "sat": {
        const r = await sat(t, ms(opts.durationMs))
        if (sample !== undefined) sample.sat = r
        return `${r.rps.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(0)} µs CPU/req, ${r.errors} errors`
      }
      case "rate": {
        const r = await rate(t, ms(opts.rateDurationMs))
        if (sample !== undefined) sample.rate = r
        return `p50 ${(r.latencyUs.p50 / 1000).toFixed(3)} ms, p99 ${(r.latencyUs.p99 / 1000).toFixed(3)} ms, ${r.ok}/${r.sent} ok`
      }
      case "sse": {
        const r = await sse(t, ms(opts.sseDurationMs))
        if (sample !== undefined) sample.sse = r
        return `${r.streams} streams, TTFB p50 ${(r.ttfbUs.p50 / 1000).toFixed(3)} ms, ${r.cpuUsPerStream.toFixed(0)} µs CPU/stream, ` +
          `${r.errors + r.incomplete} errors${r.firstError === undefined ? "" : ` (first: ${r.firstError})`}`
      }
      case "gap": {
        const r = await gap(t)
        if (sample !== undefined) sample.gap = r
        return `${r.streams} streams, TTFB p50 ${(r.ttfbUs.p50 / 1000).toFixed(3)} ms, event delay p99 ${((r.eventDelayUs?.p99 ?? NaN) / 1000).toFixed(2)} ms`
      }
      case "hold":
      case "pair":
        return ""
    }
  }

  // Every Sidecar variant saturated at once, one wrk each: the shared machine's noise hits them
  // alike, so their ratios show a few percent that separate windows cannot (issues 4 and 5).
  const sidecars = targets.filter((t) => t.name.startsWith("sidecar"))
  const pairing = opts.phases.has("pair") && sidecars.length > 1 && sidecars[0]?.name === "sidecar"
  if (opts.phases.has("pair") && sidecars.length > 1 && !pairing) say("pair phase skipped: it needs the base Sidecar (logging at warn) among them")
  if (pairing && wrk === undefined) throw new Error("the pair phase needs wrk (one generator per Sidecar)")
  const pair = async (round: number, rows: Map<string, RoundSample>) => {
    // Started in a rotating order, as the sequential phases are: no variant always gets the head start.
    const order = sidecars.map((_, i) => sidecars[(i + round) % sidecars.length] as Target)
    const results = await Promise.all(order.map((t) => sat(t, opts.durationMs)))
    order.forEach((t, i) => {
      const r = results[i] as SatSample
      const row = rows.get(t.name)
      if (row !== undefined) row.pair = r
      say(`round ${round + 1}/${opts.rounds} pair ${t.name.padEnd(12)} ${r.rps.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(0)} µs CPU/req, ${r.errors} errors`)
    })
  }

  const phases = (["sat", "rate", "sse", "gap"] as const).filter((p) => opts.phases.has(p))
  const samples = new Map<string, Array<RoundSample>>(targets.map((t) => [t.name, []]))
  if (opts.warmupMs > 0) {
    // The pair phase saturates too: warm up with saturation even when it alone was asked for.
    const warm = phases.includes("sat") || !opts.phases.has("pair") ? phases : ["sat" as const, ...phases]
    for (const t of targets) {
      for (const p of warm) if (p !== "gap") say(`warm-up ${t.name} ${p}: ${await run(t, p, undefined, opts.warmupMs / opts.durationMs)}`)
    }
  }
  // RSS while holding N slow streams: after the warm-up, before the rounds' saturation inflates the heap.
  const holds = new Map<string, HoldSample>()
  if (opts.phases.has("hold")) {
    for (const t of targets) {
      if (t.pid === undefined) continue
      await sleep(1_000)
      const rssIdleMb = rssMb(t.pid)
      const sampler = rssSampler(t.pid, 100)
      const events = Math.ceil((30_000 + opts.holdMs) / opts.holdGapMs) + 2
      const result = await ask<HoldResult>(load, { kind: "hold", origin: t.origin, streams: opts.holdStreams, events, gapMs: opts.holdGapMs, holdMs: opts.holdMs },
        opts.holdMs + 60_000, (open) => say(`hold ${t.name}: ${open} streams open, RSS ${rssMb(t.pid ?? 0).toFixed(1)} MB`))
      const rssPeakMb = sampler.stop()
      holds.set(t.name, { rssIdleMb, rssPeakMb, holding: result.maxOpen, result })
      say(`hold ${t.name}: before ${rssIdleMb.toFixed(1)} MB, peak ${rssPeakMb.toFixed(1)} MB, max open ${result.maxOpen}, errors ${result.errors}` +
        `${result.firstError === undefined ? "" : ` (first: ${result.firstError})`}, first event p50 ${(result.ttfbUs.p50 / 1000).toFixed(1)} ms / max ${(result.ttfbUs.max / 1000).toFixed(0)} ms`)
    }
  }

  for (let round = 0; round < opts.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length] as Target)
    const rows = new Map(order.map((t) => [t.name, { round } as RoundSample]))
    for (const p of phases) {
      for (const t of order) {
        say(`round ${round + 1}/${opts.rounds} ${p.padEnd(4)} ${t.name.padEnd(12)} ${await run(t, p, rows.get(t.name), 1)}`)
        await sleep(250)
      }
    }
    if (pairing) await pair(round, rows)
    for (const [name, row] of rows) samples.get(name)?.push(row)
  }

  const raw = samples.get("raw")
  const summaries = targets.map((t) => summarize(t.name, samples.get(t.name) ?? [], raw, holds.get(t.name), opts.events, samples.get("sidecar")))
  const tableText = table(summaries, { connections: opts.connections, rate: opts.rate, holdStreams: opts.holdStreams, gapMs: opts.gapMs })
  const perRound = targets.map((t) => `  ${t.name}: ${(samples.get(t.name) ?? []).map((s) => s.sat?.rps.toFixed(0) ?? "-").join(" / ")}`).join("\n")
  const checkList = summaries.filter((s) => s.target.startsWith("sidecar"))
    .flatMap((s) => [...checks(s, opts.holdStreams, opts.gapMs), ...(pairing ? overheadChecks(s) : [])])
  say(`\n=== Sidecar bench: ${opts.rounds} rounds, medians (ratios: median of same-round ratios vs raw); load average ${loadBefore} → ${load1()} ===\n`)
  say(tableText)
  say(`\nreq/s per round @ c=${opts.connections}:\n${perRound}`)
  say(`\nTargets:\n${printChecks(checkList)}`)

  const out = opts.out ?? join(tmpdir(), "sidecar-bench", "latest.json")
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, JSON.stringify({
    at: new Date().toISOString(), node: process.version, clockTicks, generator: wrk === undefined ? "undici" : "wrk", loadavg: [loadBefore, load1()],
    options: { ...opts, phases: [...opts.phases] }, summaries, checks: checkList, samples: Object.fromEntries(samples),
    holds: Object.fromEntries(holds), tempDir: dir
  }, null, 2))
  say(`\nresults JSON: ${out}`)
  return { dir, sidecars: targets.filter((t) => t.name.startsWith("sidecar")) }
}

let opts: Options
try {
  opts = parseOptions(process.argv.slice(2))
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e))
  process.exit(2)
}
process.on("exit", killAllNow)
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    console.error(`bench: ${sig}, stopping every child`)
    void killAll(1_000).finally(() => process.exit(130))
  })
}
const watchdog = setTimeout(() => {
  console.error("bench: overall time limit (20 min) reached")
  killAllNow()
  process.exit(2)
}, 20 * 60_000)

main(opts).then(
  async ({ dir, sidecars }) => {
    await killAll(opts.cpuProf ? 15_000 : 3_000)
    for (const s of sidecars) if (s.child !== undefined) await waitExit(s.child, 1_000)
    if (opts.cpuProf) {
      for (const d of readdirSync(dir).filter((n) => n.startsWith("prof-"))) {
        for (const f of readdirSync(join(dir, d))) say(`CPU profile: ${join(dir, d, f)} (summary: node --import tsx bench/profile-summary.ts <file>)`)
      }
    } else if (!opts.keep) rmSync(dir, { recursive: true, force: true })
    clearTimeout(watchdog)
  },
  async (e: unknown) => {
    console.error(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`)
    await killAll(1_000)
    clearTimeout(watchdog)
    process.exitCode = 1
  }
)
