/**
 * The bench's command-line flags (`--name=value` or `--name value`), their defaults, and the
 * Sidecar config file it writes for a run.
 */

export const TARGETS = ["direct", "raw", "sidecar"] as const
export const PHASES = ["sat", "rate", "sse", "gap", "hold", "pair"] as const
export type Phase = (typeof PHASES)[number]
const LEVELS = ["trace", "debug", "info", "warn", "error", "off"]

export interface Options {
  readonly rounds: number
  /** Saturation window per target per round (ms), and its connections. */
  readonly durationMs: number
  readonly connections: number
  readonly rate: number
  readonly rateDurationMs: number
  readonly sseDurationMs: number
  readonly sseConcurrency: number
  readonly events: number
  readonly sseGapMs: number
  readonly gapMs: number
  readonly gapStreams: number
  readonly gapConcurrency: number
  readonly holdStreams: number
  readonly holdGapMs: number
  readonly holdMs: number
  readonly warmupMs: number
  readonly targets: ReadonlyArray<string>
  readonly phases: ReadonlySet<Phase>
  /** Sidecar log levels to run: one Sidecar target per level. */
  readonly logLevels: ReadonlyArray<string>
  /** Also run a Sidecar with the usage ledger off (storage.usage_ledger: false), side by side. */
  readonly usageOff: boolean
  readonly useWrk: boolean
  readonly cpuProf: boolean
  /** Keep the run's temp dir (configs, Sidecar logs, SQLite files); always kept with --cpu-prof or on failure. */
  readonly keep: boolean
  /** Sidecar's entrypoint, relative to the repo (a .js file runs without the tsx loader). */
  readonly entry: string
  readonly out: string | undefined
}

export const USAGE = `npm run bench -- [flags]
  --rounds=3            measured rounds (after one warm-up per target)
  --duration=8          saturation seconds per target per round (wrk, or the undici closed loop)
  --connections=50      saturation connections
  --rate=500            open-loop requests/s, for --rate-duration=5 seconds
  --sse-duration=4      SSE window seconds, --sse-concurrency=20 streams at once, --events=24, --sse-gap-ms=0
  --gap-ms=20           buffering check: events this far apart, --gap-streams=40 at --gap-concurrency=10
  --hold-streams=1000   RSS check: streams open at once (an event every --hold-gap-ms=500), held --hold-ms=3000
  --only=LIST           targets (direct,raw,sidecar) and/or phases (sat,rate,sse,gap,hold,pair)
                        pair: with several Sidecars (--usage/--log-level both), saturates all of
                        them at once, one wrk each, so that the machine's noise hits them alike
  --log-level=warn      Sidecar's logging.level; "both" runs a warn and an info Sidecar side by side
  --usage=on            "both" also runs a Sidecar with the usage ledger off, side by side
  --no-wrk              use the undici closed-loop generator even when wrk is installed
  --cpu-prof            run Sidecar under --cpu-prof (profile written in the run's temp dir)
  --keep                keep the run's temp dir (Sidecar's config, log and database; kept anyway on failure)
  --entry=FILE          Sidecar entrypoint (default dist/main.js, built first as by npm start; a .ts runs under tsx)
  --out=FILE            results JSON (default: <tmpdir>/sidecar-bench/latest.json)`

export const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const flags = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? ""
    if (a === "--help" || a === "-h") throw new Error(USAGE)
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}\n${USAGE}`)
    const eq = a.indexOf("=")
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1))
    else if (a.startsWith("--no-") || a === "--cpu-prof" || a === "--keep") flags.set(a.slice(2), "true")
    else flags.set(a.slice(2), argv[++i] ?? "")
  }
  const known = new Set(["rounds", "duration", "connections", "rate", "rate-duration", "sse-duration", "sse-concurrency", "events",
    "sse-gap-ms", "gap-ms", "gap-streams", "gap-concurrency", "hold-streams", "hold-gap-ms", "hold-ms", "warmup", "only",
    "log-level", "usage", "no-wrk", "cpu-prof", "keep", "entry", "out"])
  for (const k of flags.keys()) if (!known.has(k)) throw new Error(`unknown flag --${k}\n${USAGE}`)
  const num = (name: string, dflt: number, min = 0) => {
    const v = flags.get(name)
    const n = v === undefined ? dflt : Number(v)
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${v}`)
    return n
  }
  const only = (flags.get("only") ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
  for (const o of only) {
    if (!(TARGETS as ReadonlyArray<string>).includes(o) && !(PHASES as ReadonlyArray<string>).includes(o)) {
      throw new Error(`--only: unknown target or phase ${o} (targets: ${TARGETS.join(",")}; phases: ${PHASES.join(",")})`)
    }
  }
  const onlyTargets = only.filter((o) => (TARGETS as ReadonlyArray<string>).includes(o))
  const onlyPhases = PHASES.filter((p) => only.includes(p))
  const level = flags.get("log-level") ?? "warn"
  if (level !== "both" && !LEVELS.includes(level)) throw new Error(`--log-level must be one of ${LEVELS.join(", ")}, both`)
  return {
    rounds: num("rounds", 3, 1),
    durationMs: num("duration", 8, 1) * 1000,
    connections: num("connections", 50, 1),
    rate: num("rate", 500, 1),
    rateDurationMs: num("rate-duration", 5, 1) * 1000,
    sseDurationMs: num("sse-duration", 4, 0.5) * 1000,
    sseConcurrency: num("sse-concurrency", 20, 1),
    events: num("events", 24, 3),
    sseGapMs: num("sse-gap-ms", 0),
    gapMs: num("gap-ms", 20, 1),
    gapStreams: num("gap-streams", 40, 1),
    gapConcurrency: num("gap-concurrency", 10, 1),
    holdStreams: num("hold-streams", 1000, 1),
    holdGapMs: num("hold-gap-ms", 500, 1),
    holdMs: num("hold-ms", 3000, 0),
    warmupMs: num("warmup", 2, 0) * 1000,
    targets: onlyTargets.length > 0 ? onlyTargets : [...TARGETS],
    phases: new Set(onlyPhases.length > 0 ? onlyPhases : PHASES),
    logLevels: level === "both" ? ["warn", "info"] : [level],
    usageOff: flags.get("usage") === "both",
    useWrk: flags.get("no-wrk") !== "true",
    cpuProf: flags.get("cpu-prof") === "true",
    keep: flags.get("keep") === "true",
    entry: flags.get("entry") ?? "dist/main.js",
    out: flags.get("out")
  }
}

/** Sidecar's config for the bench: one primary backend at the mock upstream, no rpm limit. */
export const sidecarYaml = (upstreamPort: number, port: number, level: string, sqlitePath: string, usageLedger = true): string => `# written by bench/run.ts
server:
  host: 127.0.0.1
  port: ${port}
  shutdown_grace_ms: 1000
storage:
  sqlite: ${JSON.stringify(sqlitePath)}
  usage_ledger: ${usageLedger}
logging:
  level: ${level}
backends:
  - id: mock
    pool: primary
    base_url: http://127.0.0.1:${upstreamPort}/v1
    api_key: bench-key
`
