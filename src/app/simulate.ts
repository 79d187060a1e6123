/**
 * `npm run simulate -- <scenario.yaml> [--set path=value ...] [--vary path=v1,v2,...] [--quiet]`
 * Plays a scenario on virtual time and prints each request's outcome and a summary; with --vary,
 * plays one variant per value and prints the summaries side by side.
 */
import { Effect, Either } from "effect"
import { check } from "../adapters/simulated/ScenarioCheck.js"
import { loadScenario } from "../adapters/simulated/ScenarioFile.js"
import { formatTable, requestLine, summaryRows } from "../adapters/simulated/ScenarioReport.js"
import * as ScenarioRunner from "../adapters/simulated/ScenarioRunner.js"

interface Args {
  readonly file: string | undefined
  readonly sets: Array<string>
  readonly vary: string | undefined
  readonly quiet: boolean
}

const usage = "usage: npm run simulate -- <scenario.yaml> [--set path=value ...] [--vary path=v1,v2,...] [--quiet]"

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  const args: { file: string | undefined; sets: Array<string>; vary: string | undefined; quiet: boolean } = {
    file: undefined,
    sets: [],
    vary: undefined,
    quiet: false
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--set") args.sets.push(argv[++i] ?? "")
    else if (a.startsWith("--set=")) args.sets.push(a.slice(6))
    else if (a === "--vary") args.vary = argv[++i]
    else if (a.startsWith("--vary=")) args.vary = a.slice(7)
    else if (a === "--quiet" || a === "-q") args.quiet = true
    else args.file = a
  }
  return args
}

const program = Effect.gen(function*() {
  const args = parseArgs(process.argv.slice(2))
  if (args.file === undefined) return yield* Effect.fail(usage)
  const file = args.file
  const variants = args.vary === undefined
    ? [{ label: "run", sets: args.sets }]
    : (() => {
      const [path, values] = args.vary.split("=")
      return (values ?? "").split(",").map((v) => ({ label: `${path}=${v}`, sets: [...args.sets, `${path}=${v}`] }))
    })()
  const runs = []
  for (const v of variants) {
    const scenario = loadScenario(file, v.sets)
    if (Either.isLeft(scenario)) return yield* Effect.fail(scenario.left.message)
    const started = performance.now()
    const run = ScenarioRunner.run(scenario.right)
    const realMs = performance.now() - started
    runs.push({ v, run, realMs, failures: check(run) })
  }
  const out: Array<string> = []
  const first = runs[0]!
  out.push(first.run.scenario.name)
  if (!args.quiet && first.run.scenario.description !== undefined) {
    out.push(...first.run.scenario.description.trim().split("\n").map((l) => `  ${l}`))
  }
  if (runs.length === 1 && !args.quiet) {
    out.push("", ...first.run.results.map(requestLine))
  }
  const tables = runs.map((r) => summaryRows(r.run))
  out.push("", formatTable(
    ["", ...runs.map((r) => r.v.label)],
    tables[0]!.map(([label], i) => [label, ...tables.map((t) => t[i]![1])])
  ))
  for (const r of runs) {
    out.push("", `${r.v.label}: ${r.run.arrivals.length} requests over ${(r.run.endedAt / 1000).toFixed(1)} virtual s, played in ${r.realMs.toFixed(0)} ms`)
    if (r.failures.length > 0) out.push(`  ${r.failures.length} expectation(s) not met:`, ...r.failures.map((f) => `   - ${f}`))
  }
  process.stdout.write(out.join("\n") + "\n")
  if (runs.some((r) => r.failures.length > 0)) process.exitCode = 1
})

Effect.runPromise(program.pipe(Effect.catchAll((message) =>
  Effect.sync(() => {
    process.stderr.write(`${message}\n`)
    process.exitCode = 2
  })
)))
