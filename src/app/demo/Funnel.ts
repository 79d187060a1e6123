/**
 * The Primary-Wait funnel (SPEC §7) read straight from Effect's in-process metrics registry:
 * a snapshot before the walk, one after, and their difference.
 */
import { Effect, Metric } from "effect"
import type { Funnel } from "../../domain/Funnel.js"
import * as M from "../../domain/Metrics.js"

export { entriesBalance, exhaustedBalance, type Funnel } from "../../domain/Funnel.js"

const count = (metric: Metric.Metric.Counter<number>): number => Effect.runSync(Metric.value(metric)).count

/** The counters as they stand now (process-wide, so compare two snapshots). */
export const snapshot = (): Funnel => ({
  enter: count(M.primaryWaitEnter),
  recovery: count(M.primaryWaitRecovery),
  exhausted: count(M.primaryWaitExhausted),
  // Abandoned is counted per reason: each label set is its own series.
  abandoned: count(Metric.tagged(M.primaryWaitAbandoned, "reason", "caller_fault")) +
    count(Metric.tagged(M.primaryWaitAbandoned, "reason", "client_closed")),
  emergencyActivations: count(M.emergencyActivations),
  emergencySuccess: count(M.emergencySuccess),
  allPoolsExhausted: count(M.allPoolsExhausted)
})

export const since = (before: Funnel, after: Funnel = snapshot()): Funnel => ({
  enter: after.enter - before.enter,
  recovery: after.recovery - before.recovery,
  exhausted: after.exhausted - before.exhausted,
  abandoned: after.abandoned - before.abandoned,
  emergencyActivations: after.emergencyActivations - before.emergencyActivations,
  emergencySuccess: after.emergencySuccess - before.emergencySuccess,
  allPoolsExhausted: after.allPoolsExhausted - before.allPoolsExhausted
})
