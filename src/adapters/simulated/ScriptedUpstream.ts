/**
 * The scripted upstream: an Upstream adapter that answers each attempt from its backend's script,
 * on whatever Clock is in force (virtual in scenarios). It keeps a log of every call, and notes a
 * direct-phase call to a backend that was cooling when it was picked (an invariant breach).
 */
import { Clock, Effect, Layer, Random } from "effect"
import { Observation } from "../../domain/FailureClass.js"
import * as Fleet from "../../domain/Fleet.js"
import type { Phase } from "../../domain/Phase.js"
import type { UpstreamResponse } from "../../domain/ProxyRequest.js"
import { FleetStore } from "../../domain/ports/FleetStore.js"
import { type AttemptReply, type AttemptSpec, Upstream } from "../../domain/ports/Upstream.js"
import type { ScriptRule } from "./ScenarioSchema.js"

export interface UpstreamCall {
  readonly at: number
  readonly backend: string
  readonly phase: Phase
  readonly requestId: string
  readonly attempt: number
  /** The backend was cooling under the very cooldown it was picked under, yet sent a direct send. */
  readonly sentWhileCooling: boolean
}

/** What a scripted success carries in place of a body. */
export interface SimulatedResponse extends UpstreamResponse {
  readonly usage: { readonly promptTokens: number; readonly completionTokens: number } | undefined
}

const ok: ScriptRule["status"] = 200

const headersOf = (rule: ScriptRule): Record<string, string> => {
  const h: Record<string, string> = { ...rule.headers }
  if (rule.retryAfter !== undefined) h["retry-after"] = String(rule.retryAfter)
  if (rule.retryAfterMs !== undefined) h["retry-after-ms"] = String(rule.retryAfterMs)
  if (rule.resetRequests !== undefined) h["x-ratelimit-reset-requests"] = rule.resetRequests
  return h
}

export const make = (
  scripts: ReadonlyMap<string, ReadonlyArray<ScriptRule>>,
  seed: number,
  calls: Array<UpstreamCall>
) =>
  Effect.gen(function*() {
    const fleet = yield* FleetStore
    const random = Random.make(seed)
    /** Per backend, per rule: calls it has answered (for `times`). */
    const used = new Map<string, Array<number>>()

    const choose = (spec: AttemptSpec, now: number) =>
      Effect.gen(function*() {
        const rules = scripts.get(spec.backend.id) ?? []
        const counts = used.get(spec.backend.id) ?? rules.map(() => 0)
        used.set(spec.backend.id, counts)
        for (let i = 0; i < rules.length; i++) {
          const r = rules[i]!
          if (r.times !== undefined && counts[i]! >= r.times) continue
          if (r.from !== undefined && now < r.from) continue
          if (r.until !== undefined && now >= r.until) continue
          if (r.chance !== undefined && (yield* random.next) >= r.chance) continue
          counts[i] = counts[i]! + 1
          return r
        }
        return undefined
      })

    const send = (spec: AttemptSpec): Effect.Effect<AttemptReply> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const state = yield* fleet.state
        const cooldown = Fleet.runtimeOf(state, spec.backend.id).cooldown
        const sentWhileCooling = spec.phase !== "emergency" &&
          cooldown.generation === spec.ticket.generation && cooldown.until > spec.ticket.sentAt
        calls.push({
          at: now,
          backend: spec.backend.id,
          phase: spec.phase,
          requestId: spec.request.id,
          attempt: spec.attempt,
          sentWhileCooling
        })
        const rule = yield* choose(spec, now)
        if (rule?.timeout !== undefined) {
          yield* Effect.sleep(rule.timeout === "first_token" ? spec.backend.firstTokenTimeoutMs : spec.backend.timeoutMs)
          return { observation: Observation.TimedOut({ stage: rule.timeout }) }
        }
        yield* Effect.sleep(rule?.latency ?? 0)
        if (rule?.connection !== undefined) {
          return { observation: Observation.ConnectionFailed({ reason: rule.connection }) }
        }
        const status = rule?.status ?? ok
        const response: SimulatedResponse = { status, usage: rule?.usage }
        return {
          observation: Observation.Response({
            status,
            headers: rule === undefined ? {} : headersOf(rule),
            errorCode: rule?.errorCode
          }),
          response,
          firstByteMs: rule?.latency ?? 0
        }
      })

    return Upstream.of({ send })
  })

export const layer = (
  scripts: ReadonlyMap<string, ReadonlyArray<ScriptRule>>,
  seed: number,
  calls: Array<UpstreamCall>
) => Layer.effect(Upstream, make(scripts, seed, calls))
