/**
 * The live LifecycleEvents: every event becomes its metric updates (SPEC §7) and, where SPEC §8
 * names one, a JSON log line. Labels stay bounded: models not named in the config become "other".
 */
import { Effect, Layer, Metric, MetricLabel } from "effect"
import { LifecycleEvent } from "../../domain/LifecycleEvent.js"
import * as M from "../../domain/Metrics.js"
import { LifecycleEvents } from "../../domain/ports/LifecycleEvents.js"

/** Decides whether a model name may appear as a label value (else "other"). */
export type ModelLabeler = (model: string) => string

/**
 * Label arrays, one instance per label set: Effect caches a metric's registry entry by the identity
 * of the label array, so reusing the instance makes an update a map hit instead of a key hash.
 */
const labelSets = () => {
  const cache = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
  return (tags: Record<string, string>): ReadonlyArray<MetricLabel.MetricLabel> => {
    let key = ""
    for (const k in tags) key += `${k}\u0000${tags[k]}\u0001`
    let labels = cache.get(key)
    if (labels === undefined) {
      labels = Object.entries(tags).map(([k, v]) => MetricLabel.make(k, v))
      cache.set(key, labels)
    }
    return labels
  }
}

export const make = (modelLabel: ModelLabeler) => {
  const labels = labelSets()
  const inc = (metric: Metric.Metric.Counter<number>, tags: Record<string, string>, by = 1) =>
    Effect.sync(() => metric.unsafeUpdate(by, labels(tags)))
  return LifecycleEvents.of({
    emit: LifecycleEvent.$match({
      AttemptFinished: ({ record: r }) =>
        Effect.zipRight(
          r.outcome === "cancelled"
            ? Effect.void
            : inc(M.upstreamAttempts, { backend: r.backend, pool: r.pool, outcome: r.outcome }),
          r.outcome === "success" || r.outcome === "cancelled"
            ? Effect.void
            : Effect.logWarning("upstream_error").pipe(Effect.annotateLogs({
              backend: r.backend,
              pool: r.pool,
              phase: r.phase,
              attempt: r.attempt,
              status: r.status ?? null,
              outcome: r.outcome,
              error_class: r.errorClass,
              duration_ms: r.durationMs
            }))
        ),
      BackendCooldown: (e) =>
        Effect.zipRight(
          inc(M.backendCooldowns, { backend: e.backend, pool: e.pool, reason: e.reason }),
          Effect.logInfo("backend_cooldown").pipe(Effect.annotateLogs({
            backend: e.backend,
            pool: e.pool,
            reason: e.reason,
            duration_ms: e.durationMs,
            streak: e.streak
          }))
        ),
      WaitIfShort: (e) =>
        Effect.logDebug("wait_if_short").pipe(Effect.annotateLogs({ backend: e.backend, wait_ms: e.waitMs })),
      PrimaryWaitEntered: (e) =>
        Effect.zipRight(
          Metric.increment(M.primaryWaitEnter),
          Effect.logInfo("primary_wait_entered").pipe(Effect.annotateLogs({ model: modelLabel(e.model), pool: e.pool }))
        ),
      PrimaryWaitRecovered: (e) =>
        Effect.zipRight(
          Metric.increment(M.primaryWaitRecovery),
          Effect.logInfo("primary_wait_recovery").pipe(
            Effect.annotateLogs({ backend: e.backend, waited_ms: e.waitedMs })
          )
        ),
      PrimaryWaitExhausted: (e) =>
        Effect.zipRight(
          Metric.increment(M.primaryWaitExhausted),
          Effect.logWarning("primary_wait_exhausted").pipe(Effect.annotateLogs({ waited_ms: e.waitedMs }))
        ),
      PrimaryWaitAbandoned: (e) =>
        Effect.zipRight(
          inc(M.primaryWaitAbandoned, { reason: e.reason }),
          Effect.logInfo("primary_wait_abandoned").pipe(Effect.annotateLogs({ reason: e.reason }))
        ),
      EmergencyActivated: (e) =>
        Effect.zipRight(
          Metric.increment(M.emergencyActivations),
          Effect.logWarning("emergency_activated").pipe(Effect.annotateLogs({ model: modelLabel(e.model) }))
        ),
      EmergencySucceeded: (e) =>
        Effect.zipRight(
          Metric.increment(M.emergencySuccess),
          Effect.logInfo("emergency_success").pipe(Effect.annotateLogs({ backend: e.backend }))
        ),
      AllPoolsExhausted: (e) =>
        Effect.zipRight(
          Metric.increment(M.allPoolsExhausted),
          Effect.logError("all_pools_exhausted").pipe(
            Effect.annotateLogs({ model: modelLabel(e.model), retry_after_ms: e.retryAfterMs })
          )
        ),
      RequestCompleted: (e) =>
        Effect.all([
          inc(M.requests, { model: modelLabel(e.model), phase: e.phase, status_class: M.statusClass(e.status) }),
          Effect.sync(() => M.requestDuration.unsafeUpdate(e.durationMs / 1000, labels({ phase: e.phase }))),
          Effect.logInfo("request_completed").pipe(Effect.annotateLogs({
            model: modelLabel(e.model),
            phase: e.phase,
            status: e.status,
            attempts: e.attempts,
            backend: e.backend ?? null,
            duration_ms: e.durationMs
          }))
        ], { discard: true }),
      UsageObserved: (e) => {
        const model = modelLabel(e.model)
        return Effect.all([
          inc(M.tokens, { backend: e.backend, model, kind: "prompt" }, e.promptTokens),
          inc(M.tokens, { backend: e.backend, model, kind: "completion" }, e.completionTokens),
          inc(M.costUsd, { backend: e.backend, model }, e.costUsd)
        ], { discard: true })
      }
    })
  })
}

export const layer = (modelLabel: ModelLabeler) => Layer.succeed(LifecycleEvents, make(modelLabel))
