/**
 * The live LifecycleEvents: every event becomes its metric updates (SPEC §7) and, where SPEC §8
 * names one, a JSON log line. Labels stay bounded: models not named in the config become "other".
 * Everything here runs on the request path, so metric updates are direct and log lines below the
 * configured level are never built.
 */
import { Effect, Layer, LogLevel, type Metric, MetricLabel } from "effect"
import { LifecycleEvent } from "../../domain/LifecycleEvent.js"
import * as M from "../../domain/Metrics.js"
import { EventFields } from "./JsonLogger.js"
import { LifecycleEvents } from "../../domain/ports/LifecycleEvents.js"

/** The label value for a model name: itself when configured, else "other" (read from the live fleet). */
export type ModelLabeler = (model: string) => Effect.Effect<string>

type Labels = ReadonlyArray<MetricLabel.MetricLabel>

/**
 * Label arrays for one metric's label names, one instance per set of values: Effect caches a
 * metric's registry entry by the identity of the label array, so reusing the instance makes an
 * update a map hit instead of a key hash. Looked up by nested maps of the values (no key string
 * or tag object built per update).
 */
const labelSet = (...names: ReadonlyArray<string>) => {
  const root = new Map<string, unknown>()
  return (...values: ReadonlyArray<string>): Labels => {
    let level = root
    for (let i = 0; i < values.length - 1; i++) {
      const v = values[i] as string
      let next = level.get(v) as Map<string, unknown> | undefined
      if (next === undefined) level.set(v, next = new Map())
      level = next
    }
    const last = values[values.length - 1] as string
    let labels = level.get(last) as Labels | undefined
    if (labels === undefined) {
      labels = names.map((n, i) => MetricLabel.make(n, values[i] as string))
      level.set(last, labels)
    }
    return labels
  }
}

const none: Labels = []

/**
 * @param minLevel the configured log level: lines below it are skipped before they are built
 * (a filtered `Effect.log` with annotations still costs ~10 µs, measured).
 */
export const make = (modelLabel: ModelLabeler, minLevel: LogLevel.LogLevel = LogLevel.Info) => {
  const add = (metric: Metric.Metric.Counter<number>, labels: Labels, by = 1) => metric.unsafeUpdate(by, labels)
  const attemptLabels = labelSet("backend", "pool", "outcome")
  const cooldownLabels = labelSet("backend", "pool", "reason")
  const reasonLabels = labelSet("reason")
  const requestLabels = labelSet("model", "phase", "status_class")
  const phaseLabels = labelSet("phase")
  const breakLabels = labelSet("backend", "kind")
  const outcomeLabels = labelSet("outcome")
  const tokenLabels = labelSet("backend", "model", "kind")
  const costLabels = labelSet("backend", "model")
  /**
   * A request's log line: `request_id` comes from the event and the fields travel with the message,
   * not as fiber annotations (annotating costs several FiberRefs copies per request).
   */
  const line = (level: LogLevel.LogLevel, msg: string, requestId: string, fields: Record<string, unknown>) => {
    fields["request_id"] = requestId
    return Effect.logWithLevel(level, msg, new EventFields(fields))
  }
  const log = (level: LogLevel.LogLevel, msg: string, requestId: string, fields: () => Record<string, unknown>): Effect.Effect<void> =>
    LogLevel.lessThan(level, minLevel) ? Effect.void : line(level, msg, requestId, fields())
  const metricsThen = (update: () => void, then: Effect.Effect<void>) =>
    then === Effect.void ? Effect.sync(update) : Effect.zipRight(Effect.sync(update), then)
  /** A log line that names the model's label; the label is looked up only when the line is written. */
  const logModel = (
    level: LogLevel.LogLevel,
    msg: string,
    requestId: string,
    model: string,
    fields: (label: string) => Record<string, unknown>
  ) =>
    LogLevel.lessThan(level, minLevel)
      ? Effect.void
      : Effect.flatMap(modelLabel(model), (label) => line(level, msg, requestId, fields(label)))

  return LifecycleEvents.of({
    emit: LifecycleEvent.$match({
      AttemptFinished: ({ record: r }) =>
        metricsThen(
          () => {
            if (r.outcome !== "cancelled") add(M.upstreamAttempts, attemptLabels(r.backend, r.pool, r.outcome))
          },
          r.outcome === "success" || r.outcome === "cancelled" ? Effect.void : log(LogLevel.Warning, "upstream_error", r.requestId, () => ({
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
        metricsThen(
          () => add(M.backendCooldowns, cooldownLabels(e.backend, e.pool, e.reason)),
          log(LogLevel.Info, "backend_cooldown", e.requestId, () => ({
            backend: e.backend,
            pool: e.pool,
            reason: e.reason,
            duration_ms: e.durationMs,
            streak: e.streak
          }))
        ),
      WaitIfShort: (e) => log(LogLevel.Debug, "wait_if_short", e.requestId, () => ({ backend: e.backend, wait_ms: e.waitMs })),
      PrimaryWaitEntered: (e) =>
        metricsThen(
          () => add(M.primaryWaitEnter, none),
          logModel(LogLevel.Info, "primary_wait_entered", e.requestId, e.model, (model) => ({ model, pool: e.pool }))
        ),
      PrimaryWaitRecovered: (e) =>
        metricsThen(
          () => add(M.primaryWaitRecovery, none),
          log(LogLevel.Info, "primary_wait_recovery", e.requestId, () => ({ backend: e.backend, waited_ms: e.waitedMs }))
        ),
      PrimaryWaitExhausted: (e) =>
        metricsThen(
          () => add(M.primaryWaitExhausted, none),
          log(LogLevel.Warning, "primary_wait_exhausted", e.requestId, () => ({ waited_ms: e.waitedMs }))
        ),
      PrimaryWaitAbandoned: (e) =>
        metricsThen(
          () => add(M.primaryWaitAbandoned, reasonLabels(e.reason)),
          log(LogLevel.Info, "primary_wait_abandoned", e.requestId, () => ({ reason: e.reason }))
        ),
      EmergencyActivated: (e) =>
        metricsThen(
          () => add(M.emergencyActivations, none),
          logModel(LogLevel.Warning, "emergency_activated", e.requestId, e.model, (model) => ({ model }))
        ),
      EmergencySucceeded: (e) =>
        metricsThen(
          () => add(M.emergencySuccess, none),
          log(LogLevel.Info, "emergency_success", e.requestId, () => ({ backend: e.backend }))
        ),
      AllPoolsExhausted: (e) =>
        metricsThen(
          () => add(M.allPoolsExhausted, none),
          logModel(LogLevel.Error, "all_pools_exhausted", e.requestId, e.model, (model) => ({ model, retry_after_ms: e.retryAfterMs }))
        ),
      RequestCompleted: (e) =>
        Effect.flatMap(modelLabel(e.model), (model) =>
          metricsThen(
          () => {
            add(M.requests, requestLabels(model, e.phase, M.statusClass(e.status)))
            M.requestDuration.unsafeUpdate(e.durationMs / 1000, phaseLabels(e.phase))
          },
          log(LogLevel.Info, "request_completed", e.requestId, () => ({
            model,
            phase: e.phase,
            status: e.status,
            attempts: e.attempts,
            backend: e.backend ?? null,
            duration_ms: e.durationMs
          }))
        )),
      StreamBroken: (e) =>
        metricsThen(
          () => add(M.streamBreaks, breakLabels(e.backend, e.kind)),
          log(LogLevel.Warning, "stream_break", e.requestId, () => ({ backend: e.backend, pool: e.pool, kind: e.kind }))
        ),
      StreamContinuation: (e) =>
        metricsThen(
          () => add(M.streamContinuations, outcomeLabels(e.outcome)),
          log(e.outcome === "continued" ? LogLevel.Info : LogLevel.Warning, "stream_continuation", e.requestId, () => ({
            outcome: e.outcome,
            kind: e.kind,
            backend: e.backend ?? null,
            tries: e.tries
          }))
        ),
      UsageObserved: (e) =>
        Effect.map(modelLabel(e.model), (model) => {
          add(M.tokens, tokenLabels(e.backend, model, "prompt"), e.promptTokens)
          add(M.tokens, tokenLabels(e.backend, model, "completion"), e.completionTokens)
          add(M.costUsd, costLabels(e.backend, model), e.costUsd)
        })
    })
  })
}

export const layer = (modelLabel: ModelLabeler, minLevel?: LogLevel.LogLevel) =>
  Layer.succeed(LifecycleEvents, make(modelLabel, minLevel))
