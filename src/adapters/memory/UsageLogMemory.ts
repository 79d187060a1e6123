/**
 * A UsageLog that keeps records in an array: for the simulator and tests.
 */
import { Effect, Layer } from "effect"
import type { AttemptRecord } from "../../domain/Attempt.js"
import { UsageLog } from "../../domain/ports/UsageLog.js"

export const layer = (into: Array<AttemptRecord>) =>
  Layer.succeed(UsageLog, UsageLog.of({ record: (r) => Effect.sync(() => void into.push(r)) }))
