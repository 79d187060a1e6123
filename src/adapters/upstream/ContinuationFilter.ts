/**
 * What a continuation's stream may add to the client's answer: its events pass through, minus what
 * would show the seam — the second role announcement, the whitespace the prefill had trimmed (when
 * the continuation repeats it) — and with its usage chunk restated for the whole answer.
 */
import type { AnswerTracker } from "./AnswerTracker.js"
import { isObject } from "./JsonValue.js"

const isCount = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u) && u >= 0

/** A keep / drop / replace verdict on one SSE data event (a string replaces the event's data). */
export type EventVerdict = boolean | string

/**
 * Invariants: an event is only changed or dropped when it is a JSON chat chunk; anything else passes
 * untouched (and, being unreadable, makes the answer no longer continuable). The tracker sees the
 * events as the client receives them, so its text stays exactly the client's.
 */
export class ContinuationFilter {
  /** Content has flowed: no more seam to hide. */
  private started = false
  /** How much of `trimmed` the continuation has repeated so far. */
  private matched = 0
  /**
   * The continuation answered with an error event before any content: it failed before its
   * commit point, and nothing of it may reach the client.
   */
  refused = false

  /**
   * @param trimmed the whitespace cut from the end of the prefill (some servers refuse a prefill
   * that ends in whitespace); a continuation that starts by repeating it has that part removed.
   */
  constructor(private readonly answer: AnswerTracker, private readonly trimmed: string) {}

  inspect(data: string): EventVerdict {
    let event: unknown
    try {
      event = JSON.parse(data)
    } catch {
      this.answer.observe(data)
      return true
    }
    if (!isObject(event)) {
      this.answer.observeEvent(event)
      return true
    }
    if (!this.started && event["error"] !== undefined && event["error"] !== null) {
      this.refused = true
      return false
    }
    let changed = this.restateUsage(event)
    const choices = event["choices"]
    const choice = Array.isArray(choices) && choices.length === 1 ? choices[0] : undefined
    if (!this.started && isObject(choice) && isObject(choice["delta"])) {
      const delta = choice["delta"]
      if (delta["role"] !== undefined) {
        delete delta["role"]
        changed = true
      }
      const content = delta["content"]
      if (typeof content === "string") {
        const rest = this.unrepeat(content)
        if (rest !== content) {
          delta["content"] = rest
          changed = true
        }
        if (rest.length > 0) this.started = true
      }
      const empty = Object.values(delta).every((v) => v === null || v === "") &&
        (choice["finish_reason"] === undefined || choice["finish_reason"] === null) &&
        !isObject(event["usage"])
      if (empty) return false
    }
    this.answer.observeEvent(event)
    return changed ? JSON.stringify(event) : true
  }

  /** Removes the leading part of `content` that repeats the trimmed whitespace. */
  private unrepeat(content: string): string {
    let i = 0
    while (i < content.length && this.matched < this.trimmed.length && content[i] === this.trimmed[this.matched]) {
      i++
      this.matched++
    }
    // Anything else first: the continuation did not repeat the rest, and will not later.
    if (i < content.length) this.matched = this.trimmed.length
    return i === 0 ? content : content.slice(i)
  }

  /** The client asked for usage: it gets the whole answer's, not the continuation's alone. */
  private restateUsage(event: Record<string, unknown>): boolean {
    const usage = event["usage"]
    if (!isObject(usage) || !isCount(usage["prompt_tokens"]) || !isCount(usage["completion_tokens"])) return false
    const whole = this.answer.wholeUsage(usage["prompt_tokens"], usage["completion_tokens"])
    event["usage"] = {
      ...usage,
      prompt_tokens: whole.prompt,
      completion_tokens: whole.completion,
      total_tokens: whole.prompt + whole.completion
    }
    return true
  }
}
