/**
 * SPEC §8 log lines: one JSON object per line on stdout with `level`, `time`, `msg` (the event
 * name) and the event's fields (annotations, `request_id` among them) at the top level.
 */
import { Cause, Effect, HashMap, Inspectable, Layer, Logger } from "effect"

const levelName: Record<string, string> = {
  All: "all",
  Trace: "trace",
  Debug: "debug",
  Info: "info",
  Warning: "warn",
  Error: "error",
  Fatal: "fatal",
  None: "off"
}

/**
 * An event's fields, passed as the second part of a log message (`Effect.logWithLevel(level, msg,
 * new EventFields(fields))`) rather than as fiber annotations: annotating costs FiberRefs copies
 * per line; this costs nothing more than the line. They land at the top level of the JSON line.
 */
export class EventFields {
  constructor(readonly fields: Record<string, unknown>) {}
  toJSON(): Record<string, unknown> {
    return this.fields
  }
}

const messageText = (message: unknown): string => {
  if (typeof message === "string") return message
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((m) => (typeof m === "string" ? m : Inspectable.toStringUnknown(m))).join(" ")
}

/** Formats one log entry as the JSON line (without the newline). */
export const format = Logger.make(({ annotations, cause, date, logLevel, message }) => {
  const parts = Array.isArray(message) ? message : undefined
  const event = parts !== undefined && parts.length === 2 && parts[1] instanceof EventFields ? parts[1] : undefined
  const line: Record<string, unknown> = {
    level: levelName[logLevel._tag] ?? logLevel.label.toLowerCase(),
    time: date.toISOString(),
    msg: messageText(event === undefined ? message : parts?.[0])
  }
  // Request lines carry their fields in EventFields; fiber annotations are rare (startup lines).
  if (HashMap.size(annotations) > 0) for (const [k, v] of HashMap.toEntries(annotations)) line[k] = v
  if (event !== undefined) for (const k in event.fields) line[k] = event.fields[k]
  if (!Cause.isEmpty(cause)) line["cause"] = Cause.pretty(cause, { renderErrorCause: true })
  return JSON.stringify(line)
})

/** Writes each line to a sink (stdout in production, an array in tests). */
export const make = (write: (line: string) => void) => Logger.map(format, (line) => write(line + "\n"))

/**
 * Lines written to stdout in one write per event-loop turn: a write to a pipe or file is a
 * synchronous syscall in Node, and a request's lines are thus one syscall, not several. Whatever
 * is pending when the process exits is written then.
 */
const batchedStdout = () => {
  let pending = ""
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (pending === "") return
    const out = pending
    pending = ""
    process.stdout.write(out)
  }
  const write = (line: string) => {
    pending += line
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }
  return { write, flush }
}

/** Replaces Effect's default logger with the JSON line logger on (batched) stdout. */
export const layer = Layer.unwrapScoped(Effect.gen(function*() {
  const sink = batchedStdout()
  yield* Effect.acquireRelease(
    Effect.sync(() => process.on("exit", sink.flush)),
    () => Effect.sync(() => {
      sink.flush()
      process.off("exit", sink.flush)
    })
  )
  return Logger.replace(Logger.defaultLogger, make(sink.write))
}))
