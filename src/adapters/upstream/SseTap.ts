/**
 * Incremental SSE scanner on the streaming data plane: passes an upstream's bytes through event by
 * event while noting the commit point (first data event), `[DONE]` and the usage chunk.
 */
import { findUsageKey, usageIn, usageObjectStart } from "./Usage.js"
import { isObject } from "./JsonValue.js"
import { opensWithError } from "./StreamOpeningError.js"

/** A partial event longer than this is not an SSE stream worth parsing: pass the rest through blind. */
const MAX_PENDING = 1024 * 1024

/**
 * Feed it upstream chunks in order; it returns the bytes to hand the client now. Invariants:
 * - bytes leave unchanged and in order, as soon as the event they belong to is complete (only the
 *   partial event at the end of a chunk is held back), so a break never leaves half an event;
 * - the one exception: when `dropUsageChunk`, the usage-only chunk (`choices: []` with a `usage`
 *   object) is removed, since the client did not ask for it;
 * - a malformed event (bad JSON, odd fields) passes through untouched and is ignored for accounting;
 * - JSON is parsed only for an event whose data holds a `"usage": {` object (once per stream).
 * Line endings LF, CRLF and CR are all understood.
 */
export class SseTap {
  /** Complete events seen (data or comment-only): the stream's liveness for the idle timeout. */
  events = 0
  /** A data event has been seen: the commit point of a streamed response. */
  sawData = false
  /** `data: [DONE]` has been seen: whatever follows, the answer is complete. */
  done = false
  /** The first data event, when it is a JSON object opening with an `error` key (the commit decision reads it). */
  firstError: string | undefined = undefined
  promptTokens: number | undefined = undefined
  completionTokens: number | undefined = undefined

  /** The held partial event (it always starts at an event boundary). */
  private pending: Buffer | undefined = undefined
  /** Offset in `pending` of its first line not yet scanned. */
  private pendingLine = 0
  /** The current event's data lines: how many, the first one's value (offsets from the event start). */
  private dataLines = 0
  private dataStart = 0
  private dataEnd = 0
  /** The current event's joined data, only once it has a second data line. */
  private joined: string | undefined = undefined
  /** Where the next `"usage"` key is in the current buffer: -2 not searched yet, -1 none left. */
  private usageAt = -2
  /** Gave up parsing (an oversized partial event): everything passes through as is. */
  private blind = false
  /** The last chunk ended with a CR: an LF opening the next one belongs to it (CRLF split in two). */
  private afterCr = false
  /** The last complete event reached the client unchanged. */
  private lastKept = true

  /**
   * @param inspect sees every data event the client is to receive (`[DONE]` excepted) and may keep
   * it (true), drop it (false) or replace its data (a string): the answer tracking and continuation
   * splicing hook. Absent, no event is parsed beyond the usage chunk.
   */
  constructor(
    private readonly dropUsageChunk: boolean,
    private readonly inspect?: ((data: string) => boolean | string) | undefined
  ) {}

  /** Takes the next upstream chunk; returns what the client should receive now, if anything. */
  feed(chunk: Buffer): Buffer | undefined {
    if (this.blind) return chunk
    let buf = chunk
    let line = 0
    let eventStart = 0
    let emitFrom = 0
    let parts: Array<Buffer> | undefined
    const between = this.pending === undefined
    if (!between) {
      buf = Buffer.concat([this.pending as Buffer, chunk])
      line = this.pendingLine
      this.pending = undefined
    }
    if (this.afterCr) {
      this.afterCr = false
      if (buf[line] === 10) {
        line++
        // The LF ends the event the last chunk ended (its CRLF split in two): it goes, or not, with it.
        if (between) {
          eventStart = line
          if (!this.lastKept) {
            emitFrom = line
            parts = []
          }
        }
      }
    }
    const len = buf.length
    this.usageAt = -2
    let cr = buf.indexOf(13, line)
    while (line < len) {
      const lf = buf.indexOf(10, line)
      if (cr !== -1 && cr < line) cr = buf.indexOf(13, line)
      let eol: number
      let next: number
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        eol = cr
        next = buf[cr + 1] === 10 ? cr + 2 : cr + 1
        if (next === len && buf[cr + 1] !== 10) this.afterCr = true // maybe half a CRLF
      } else if (lf === -1) {
        break
      } else {
        eol = lf
        next = lf + 1
      }
      if (eol === line) {
        const verdict = this.endEvent(buf, eventStart)
        this.lastKept = verdict === true
        if (verdict !== true) {
          parts ??= []
          if (eventStart > emitFrom) parts.push(buf.subarray(emitFrom, eventStart))
          if (verdict !== false) parts.push(verdict)
          emitFrom = next
        }
        eventStart = next
      } else if (
        eol - line >= 4 && buf[line] === 0x64 && buf[line + 1] === 0x61 && buf[line + 2] === 0x74 &&
        buf[line + 3] === 0x61 && (eol - line === 4 || buf[line + 4] === 0x3a)
      ) {
        this.addData(buf, eventStart, line, eol)
      }
      line = next
    }
    let emitTo = eventStart
    if (eventStart < len) {
      this.pending = eventStart === 0 ? buf : buf.subarray(eventStart)
      this.pendingLine = line - eventStart
      if (this.pending.length > MAX_PENDING) {
        this.blind = true
        this.pending = undefined
        emitTo = len
      }
    }
    if (parts === undefined) {
      if (emitTo === len) return buf
      return emitTo > 0 ? buf.subarray(0, emitTo) : undefined
    }
    if (emitTo > emitFrom) parts.push(buf.subarray(emitFrom, emitTo))
    return parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : Buffer.concat(parts)
  }

  /** At a clean upstream EOF: the held partial event (an unterminated last event), passed on as is. */
  flush(): Buffer | undefined {
    const p = this.pending
    this.pending = undefined
    return p
  }

  /** At a break: the held partial event is dropped, so the in-band error event parses cleanly. */
  discard(): void {
    this.pending = undefined
  }

  private addData(buf: Buffer, eventStart: number, line: number, eol: number): void {
    let v = line + 5
    if (v > eol) v = eol
    if (v < eol && buf[v] === 0x20) v++
    if (this.dataLines === 0) {
      this.dataStart = v - eventStart
      this.dataEnd = eol - eventStart
    } else {
      this.joined ??= buf.toString("utf8", eventStart + this.dataStart, eventStart + this.dataEnd)
      this.joined += "\n" + buf.toString("utf8", v, eol)
    }
    this.dataLines++
  }

  /**
   * Accounts for the event that starts at `eventStart`: true when it reaches the client as is,
   * false when it must not, or the bytes of the event that replaces it.
   */
  private endEvent(buf: Buffer, eventStart: number): boolean | Buffer {
    this.events++
    const lines = this.dataLines
    if (lines === 0) return true
    this.dataLines = 0
    const first = !this.sawData
    this.sawData = true
    if (first) this.noteFirst(buf, eventStart, lines)
    let data: string | undefined
    if (lines > 1) {
      data = this.joined ?? ""
      this.joined = undefined
      if (data === "[DONE]") {
        this.done = true
        return true
      }
      if (data.includes("\"usage\"") && !this.readUsage(data)) return false
      return this.inspected(data)
    }
    const s = eventStart + this.dataStart
    const e = eventStart + this.dataEnd
    if (e - s === 6 && buf[s] === 0x5b && buf.toString("latin1", s, e) === "[DONE]") {
      this.done = true
      return true
    }
    let at = this.usageAt
    if (at === -2 || (at !== -1 && at < s)) at = this.usageAt = findUsageKey(buf, s)
    if (at !== -1 && at < e && usageObjectStart(buf, at, e) >= 0) {
      data = buf.toString("utf8", s, e)
      if (!this.readUsage(data)) return false
    }
    return this.inspect === undefined ? true : this.inspected(data ?? buf.toString("utf8", s, e))
  }

  /** Keeps the first data event's text when it opens with `{"error"` (checked on its first bytes). */
  private noteFirst(buf: Buffer, eventStart: number, lines: number): void {
    if (lines > 1) {
      const data = this.joined ?? ""
      if (opensWithError(data.slice(0, 32))) this.firstError = data
      return
    }
    const s = eventStart + this.dataStart
    const e = eventStart + this.dataEnd
    let i = s
    while (i < e && (buf[i] === 0x20 || buf[i] === 0x09)) i++
    if (buf[i] === 0x7b && opensWithError(buf.toString("latin1", i, Math.min(e, i + 32)))) {
      this.firstError = buf.toString("utf8", s, e)
    }
  }

  private inspected(data: string): boolean | Buffer {
    const inspect = this.inspect
    if (inspect === undefined) return true
    const verdict = inspect(data)
    return typeof verdict === "string" ? Buffer.from(`data: ${verdict}\n\n`) : verdict
  }

  private readUsage(data: string): boolean {
    let obj: unknown
    try {
      obj = JSON.parse(data)
    } catch {
      return true
    }
    const usage = usageIn(obj)
    if (usage === undefined) return true
    if (usage.promptTokens !== undefined) this.promptTokens = usage.promptTokens
    if (usage.completionTokens !== undefined) this.completionTokens = usage.completionTokens
    if (!this.dropUsageChunk || !isObject(obj) || !isObject(obj["usage"])) return true
    const choices = obj["choices"]
    return Array.isArray(choices) && choices.length > 0
  }
}
