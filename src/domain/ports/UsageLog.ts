/**
 * Port: the usage ledger, one record per upstream attempt.
 */
import { Context, type Effect } from "effect"
import type { AttemptRecord } from "../Attempt.js"

export interface UsageLogShape {
  /** Queues a record. Never blocks and never fails the request: a full queue drops and counts. */
  readonly record: (record: AttemptRecord) => Effect.Effect<void>
}

export class UsageLog extends Context.Tag("sidecar/UsageLog")<UsageLog, UsageLogShape>() {}
