// The domain on TestClock over the in-memory adapters and a scripted upstream: one `setup` for the
// lifecycle and continuation tests, with what each records (usage rows, events, upstream calls and
// the AttemptSpec each call was sent).
import { Effect, Layer, Schema } from "effect"
import * as FleetStoreMemory from "../../src/adapters/memory/FleetStoreMemory.js"
import * as UsageLogMemory from "../../src/adapters/memory/UsageLogMemory.js"
import * as RecordingEvents from "../../src/adapters/simulated/RecordingEvents.js"
import { ScriptRule } from "../../src/adapters/simulated/ScenarioSchema.js"
import * as ScriptedUpstream from "../../src/adapters/simulated/ScriptedUpstream.js"
import type { AttemptRecord } from "../../src/domain/Attempt.js"
import { Backend } from "../../src/domain/Backend.js"
import type { LifecycleEvent } from "../../src/domain/LifecycleEvent.js"
import { Policy, PolicyConfig } from "../../src/domain/Policy.js"
import { type AttemptSpec, Upstream } from "../../src/domain/ports/Upstream.js"

export interface Setup {
  readonly backends: ReadonlyArray<Record<string, unknown>>
  readonly scripts?: Record<string, ReadonlyArray<Record<string, unknown>>>
  readonly policy?: Record<string, unknown>
}

export const setup = (s: Setup) => {
  const usage: Array<AttemptRecord> = []
  const events: Array<RecordingEvents.TimedEvent> = []
  const calls: Array<ScriptedUpstream.UpstreamCall> = []
  const sent: Array<AttemptSpec> = []
  const backends = s.backends.map((b) => Schema.decodeUnknownSync(Backend)({ base_url: "http://x/v1", ...b }))
  const scripts = new Map(
    Object.entries(s.scripts ?? {}).map(([id, rules]) => [id, rules.map((r) => Schema.decodeUnknownSync(ScriptRule)(r))])
  )
  const policy = Schema.decodeUnknownSync(PolicyConfig)({ cooldown: { base_ms: 5000 }, ...s.policy })
  const upstream = Layer.effect(
    Upstream,
    Effect.map(ScriptedUpstream.make(scripts, 1, calls), (u) =>
      Upstream.of({ send: (spec) => Effect.suspend(() => (sent.push(spec), u.send(spec))) }))
  )
  const layer = Layer.mergeAll(upstream, UsageLogMemory.layer(usage), RecordingEvents.layer(events)).pipe(
    Layer.provideMerge(FleetStoreMemory.layer(backends)),
    Layer.provideMerge(Layer.succeed(Policy, policy))
  )
  const backend = (id: string): Backend => {
    const b = backends.find((x) => x.id === id)
    if (b === undefined) throw new Error(`no backend ${id}`)
    return b
  }
  const tagged = <T extends LifecycleEvent["_tag"]>(tag: T) =>
    events.flatMap((e) => (e.event._tag === tag ? [{ at: e.at, ...(e.event as Extract<LifecycleEvent, { _tag: T }>) }] : []))
  const count = (tag: LifecycleEvent["_tag"]) => tagged(tag).length
  const callTimes = () => calls.map((c) => [c.at, c.backend, c.phase])
  const calledBackends = () => calls.map((c) => c.backend)
  return { layer, usage, events, calls, sent, backend, tagged, count, callTimes, calledBackends }
}

export type Env = ReturnType<typeof setup>
