/**
 * The demo, start to finish: simulated providers, an in-process Sidecar, the scripted walk through
 * every lifecycle phase, then the funnel. Every answer is checked, so the demo is a smoke test too.
 */
import { start, type RunningSidecar } from "../Embedded.js"
import { emergencyPerKey, MODEL, sidecarConfig, timing } from "./DemoConfig.js"
import { ask, makeClient, type Row } from "./DemoClient.js"
import { entriesBalance, exhaustedBalance, type Funnel, since, snapshot } from "./Funnel.js"
import { funnelLines, heading, phaseLine, rowLine, tableHeader, trafficLines } from "./Report.js"
import { mismatches, type Providers, script } from "./Script.js"
import { type SimulatedUpstream, startUpstream } from "./SimulatedUpstream.js"

export interface DemoResult {
  readonly ok: boolean
  /** Why the demo failed, when it did. */
  readonly failure?: string | undefined
  readonly rows: ReadonlyArray<Row>
  /** Funnel counters moved by this run. */
  readonly funnel: Funnel
  readonly durationMs: number
}

/** The whole walk takes ~20 s; past this something hangs. */
const WALK_DEADLINE_MS = 75_000
const STOP_DEADLINE_MS = 5_000

/** What the funnel must read after the walk: (e) recovers, (f) and (g) run out of Primary-Wait. */
const expectedFunnel: Funnel = {
  enter: 3,
  recovery: 1,
  exhausted: 2,
  abandoned: 0,
  emergencyActivations: 2,
  emergencySuccess: 1,
  allPoolsExhausted: 1
}

class DemoFailure extends Error {}

const withDeadline = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DemoFailure(`${what} did not finish within ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

const walk = async (sidecar: RunningSidecar, providers: Providers, rows: Array<Row>, write: (line: string) => void) => {
  const client = makeClient(sidecar.url)
  write(tableHeader())
  for (const step of script) {
    write(heading(step.id, step.heading))
    step.setup(providers)
    for (const request of step.requests) {
      const row = await ask(client, rows.length + 1, step.id, request.label)
      rows.push(row)
      write(rowLine(row))
      const problems = mismatches(request.expect, row)
      if (problems.length > 0) {
        throw new DemoFailure(`step (${step.id}) request #${row.index} "${request.label}": ${problems.join("; ")}`)
      }
    }
  }
}

const funnelFailure = (f: Funnel): string | undefined => {
  if (!entriesBalance(f)) return "funnel: enter != recovery + exhausted + abandoned"
  if (!exhaustedBalance(f)) return "funnel: exhausted != emergency activations"
  const off = (Object.keys(expectedFunnel) as Array<keyof Funnel>).filter((k) => f[k] !== expectedFunnel[k])
  return off.length === 0
    ? undefined
    : `funnel: ${off.map((k) => `${k} ${f[k]}, expected ${expectedFunnel[k]}`).join("; ")}`
}

const message = (e: unknown) => (e instanceof DemoFailure ? e.message : `unexpected error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`)

/** Runs the demo, writing its report line by line (without newlines). Never throws. */
export const runDemo = async (write: (line: string) => void): Promise<DemoResult> => {
  const startedAt = performance.now()
  const before = snapshot()
  const upstreams: Array<SimulatedUpstream> = []
  const rows: Array<Row> = []
  let sidecar: RunningSidecar | undefined
  let failure: string | undefined
  try {
    for (const name of ["primary-a", "primary-b", "fallback-1"]) upstreams.push(await startUpstream(name))
    const [a, b, fallback] = upstreams as [SimulatedUpstream, SimulatedUpstream, SimulatedUpstream]
    sidecar = await start(sidecarConfig([a, b], [fallback]))
    write(`Sidecar demo: an OpenAI client → Sidecar (in-process, ${sidecar.url}) → 3 simulated providers`)
    write(`  pools: primary = primary-a, primary-b; fallback = fallback-1; model ${MODEL}`)
    write(
      `  wait_if_shorter_than ${timing.waitIfShorterThanMs / 1000} s; Primary-Wait ${timing.primaryWaitRetries} × ` +
        `${timing.primaryWaitIntervalMs / 1000} s; emergency ${emergencyPerKey} request/min per key`
    )
    write("")
    await withDeadline(walk(sidecar, { a, b, fallback }, rows, write), WALK_DEADLINE_MS, "the walk")
  } catch (e) {
    failure = message(e)
  } finally {
    const running = sidecar
    try {
      if (running !== undefined) await withDeadline(running.stop(), STOP_DEADLINE_MS, "stopping Sidecar")
      await withDeadline(Promise.all(upstreams.map((u) => u.close())), STOP_DEADLINE_MS, "closing the providers")
    } catch (e) {
      failure ??= message(e)
    }
  }
  const funnel = since(before)
  failure ??= funnelFailure(funnel)
  const durationMs = Math.round(performance.now() - startedAt)
  if (rows.length > 0) {
    for (const line of ["", ...trafficLines(upstreams), "", ...funnelLines(funnel), "", phaseLine(rows)]) write(line)
  }
  write(
    failure === undefined
      ? `Demo passed in ${(durationMs / 1000).toFixed(1)} s: every phase behaved as described.`
      : `DEMO FAILED after ${(durationMs / 1000).toFixed(1)} s: ${failure}`
  )
  return { ok: failure === undefined, failure, rows, funnel, durationMs }
}
