/**
 * Plays a scenario: builds its fleet, policy and scripted upstreams, sends its requests at their
 * virtual instants through the real lifecycle, and collects what happened. The same program runs
 * on the fast virtual-time driver (simulator, tests) and on Effect's TestClock (equivalence tests).
 */
import { Cause, Clock, Data, Effect, Fiber, Layer, Random } from "effect"
import type { AttemptRecord } from "../../domain/Attempt.js"
import { Backend } from "../../domain/Backend.js"
import * as Lifecycle from "../../domain/Lifecycle.js"
import { LifecycleEvent } from "../../domain/LifecycleEvent.js"
import type { Phase } from "../../domain/Phase.js"
import { Policy, PolicyConfig } from "../../domain/Policy.js"
import { LifecycleEvents } from "../../domain/ports/LifecycleEvents.js"
import * as FleetStoreMemory from "../memory/FleetStoreMemory.js"
import * as UsageLogMemory from "../memory/UsageLogMemory.js"
import * as RecordingEvents from "./RecordingEvents.js"
import type { GeneratedRequests, RequestExpect, RequestGroup, Scenario, ScriptRule } from "./ScenarioSchema.js"
import * as ScriptedUpstream from "./ScriptedUpstream.js"
import { runVirtual, type SameInstantOrder } from "./VirtualTime.js"

export interface Arrival {
  readonly index: number
  /** Index of the `requests` entry it came from. */
  readonly group: number
  readonly at: number
  readonly model: string
  readonly abandonAfter: number | undefined
  readonly expect: RequestExpect | undefined
}

export interface RequestResult {
  readonly index: number
  readonly group: number
  readonly at: number
  readonly model: string
  readonly status: number
  readonly phase: Phase
  readonly backend: string | undefined
  readonly pool: string | undefined
  readonly attempts: number
  /** Virtual time from arrival to the response. */
  readonly latencyMs: number
  readonly retryAfterMs: number | undefined
  /** The client left before the response (status 499, nginx's "client closed request"). */
  readonly abandoned: boolean
}

export interface ScenarioRun {
  readonly scenario: Scenario
  readonly arrivals: ReadonlyArray<Arrival>
  readonly results: ReadonlyArray<RequestResult>
  readonly calls: ReadonlyArray<ScriptedUpstream.UpstreamCall>
  readonly events: ReadonlyArray<RecordingEvents.TimedEvent>
  readonly usage: ReadonlyArray<AttemptRecord>
  /** Virtual instant at which the last request ended. */
  readonly endedAt: number
}

const ratePerMs = (rate: number | string): number => {
  if (typeof rate === "number") return rate / 1000
  const [n, unit] = rate.split("/")
  return Number(n) / (unit === "m" ? 60_000 : 1000)
}

const generated = (g: GeneratedRequests["generate"], group: number, model: string) =>
  Effect.gen(function*() {
    const rng = Random.make(g.seed)
    const perMs = ratePerMs(g.rate)
    const out: Array<Omit<Arrival, "index">> = []
    let t = g.start
    for (;;) {
      const step = g.arrival === "uniform" ? 1 / perMs : -Math.log(1 - (yield* rng.next)) / perMs
      t += step
      if (t >= g.start + g.for) break
      out.push({ group, at: Math.round(t), model: g.model ?? model, abandonAfter: undefined, expect: undefined })
    }
    return out
  })

const listed = (r: RequestGroup, group: number, model: string): Array<Omit<Arrival, "index">> =>
  Array.from({ length: r.count }, (_, i) => ({
    group,
    at: r.at + (r.every ?? 0) * i,
    model: r.model ?? model,
    abandonAfter: r.abandonAfter,
    expect: r.expectEach?.[i] ?? r.expect
  }))

/** Every request of the scenario, ordered by arrival (listing order within an instant). */
export const arrivalsOf = (scenario: Scenario) =>
  Effect.gen(function*() {
    const all: Array<Omit<Arrival, "index">> = []
    for (const [group, r] of scenario.requests.entries()) {
      all.push(...("generate" in r ? yield* generated(r.generate, group, scenario.model) : listed(r, group, scenario.model)))
    }
    return all
      .map((a, i) => ({ a, i }))
      .sort((x, y) => x.a.at - y.a.at || x.i - y.i)
      .map(({ a }, index): Arrival => ({ ...a, index }))
  })

const runRequest = (a: Arrival) =>
  Effect.gen(function*() {
    const events = yield* LifecycleEvents
    const outcome = yield* Lifecycle.handle({ id: `r${a.index}`, model: a.model }).pipe(Effect.either)
    const now = yield* Clock.currentTimeMillis
    let result: RequestResult
    if (outcome._tag === "Right") {
      const o = outcome.right
      if (o._tag === "Served") {
        const usage = (o.response as ScriptedUpstream.SimulatedResponse).usage
        yield* Lifecycle.settleServed(o, {
          promptTokens: usage?.promptTokens,
          completionTokens: usage?.completionTokens,
          durationMs: now - o.record.at
        })
      }
      const pool = o.pool
      result = { ...base(a, now), status: o.response.status, phase: o.phase, backend: o.backend, pool, attempts: o.attempts }
    } else {
      const e = outcome.left
      result = e._tag === "AllPoolsExhausted"
        ? { ...base(a, now), status: 503, phase: "exhausted", attempts: e.attempts.length, retryAfterMs: e.retryAfterMs }
        : { ...base(a, now), status: 404, phase: "exhausted" }
    }
    yield* events.emit(LifecycleEvent.RequestCompleted({
      requestId: `r${a.index}`,
      model: a.model,
      phase: result.phase,
      status: result.status,
      attempts: result.attempts,
      backend: result.backend,
      durationMs: result.latencyMs
    }))
    return result
  })

const base = (a: Arrival, now: number) => ({
  index: a.index,
  group: a.group,
  at: a.at,
  model: a.model,
  latencyMs: now - a.at,
  backend: undefined,
  pool: undefined,
  attempts: 0,
  retryAfterMs: undefined,
  abandoned: false
})

/** A request whose client leaves after `abandonAfter`: the lifecycle is interrupted there. */
const runArrival = (a: Arrival) =>
  a.abandonAfter === undefined ? runRequest(a) : runRequest(a).pipe(
    Effect.timeoutTo({
      duration: a.abandonAfter,
      onSuccess: (r): RequestResult => r,
      onTimeout: (): RequestResult => ({ ...base(a, a.at + a.abandonAfter!), status: 499, phase: "direct", abandoned: true })
    })
  )

/** The scenario as one Effect program, on whatever Clock is in force. */
export const play = (scenario: Scenario): Effect.Effect<ScenarioRun> =>
  Effect.gen(function*() {
    const calls: Array<ScriptedUpstream.UpstreamCall> = []
    const events: Array<RecordingEvents.TimedEvent> = []
    const usage: Array<AttemptRecord> = []
    const backends = scenario.backends.map(({ script: _script, ...b }) => Backend.make(b))
    const scripts = new Map<string, ReadonlyArray<ScriptRule>>(scenario.backends.map((b) => [b.id, b.script]))
    const policy = PolicyConfig.make(scenario.policy)
    const env = Layer.mergeAll(
      ScriptedUpstream.layer(scripts, scenario.seed, calls),
      RecordingEvents.layer(events),
      UsageLogMemory.layer(usage)
    ).pipe(
      Layer.provideMerge(FleetStoreMemory.layer(backends)),
      Layer.provideMerge(Layer.succeed(Policy, policy))
    )
    const arrivals = yield* arrivalsOf(scenario)
    const results = yield* Effect.gen(function*() {
      const fibers: Array<Fiber.RuntimeFiber<RequestResult>> = []
      let now = 0
      for (const a of arrivals) {
        if (a.at > now) {
          yield* Effect.sleep(a.at - now)
          now = a.at
        }
        fibers.push(yield* Effect.fork(runArrival(a)))
      }
      return yield* Fiber.joinAll(fibers)
    }).pipe(Effect.provide(env))
    const endedAt = yield* Clock.currentTimeMillis
    return { scenario, arrivals, results, calls, events, usage, endedAt }
  })

/** The scenario program itself failed (a defect in the engine or the lifecycle), not an expectation. */
export class ScenarioRunFailed extends Data.TaggedError("ScenarioRunFailed")<{
  readonly scenario: string
  readonly cause: Cause.Cause<unknown>
}> {
  override get message() {
    return `scenario ${this.scenario} failed to run:\n${Cause.pretty(this.cause)}`
  }
}

/** Plays a scenario on the virtual-time driver: deterministic, and fast. Throws ScenarioRunFailed on a defect. */
export const run = (scenario: Scenario, options: { readonly sameInstantOrder?: SameInstantOrder } = {}): ScenarioRun => {
  const { exit } = runVirtual(play(scenario), options)
  if (exit._tag === "Failure") throw new ScenarioRunFailed({ scenario: scenario.name, cause: exit.cause })
  return exit.value
}
