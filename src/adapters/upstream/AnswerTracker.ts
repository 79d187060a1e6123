/**
 * The answer a chat completion stream has delivered so far, kept (only when a break could be
 * continued) so that a continuation can be asked to carry on from exactly that text.
 */
import { isObject } from "./JsonValue.js"

/** Delta fields a plain text answer may carry; any other non-null field makes it something else. */
const TEXT_DELTA_FIELDS = new Set(["role", "content"])

/**
 * Invariants: `text` is the concatenation of every content delta the client has been handed, in
 * order; `continuable` turns false for good on anything that is not one plain text choice (tool or
 * function calls, refusals, reasoning, audio, a second choice, an error event, an event that is
 * not JSON — its text could not be known).
 */
export class AnswerTracker {
  text = ""
  continuable = true
  /** A choice reached its `finish_reason`: the answer is whole, nothing to continue. */
  finished = false
  /** Content deltas in the current segment (one segment per upstream attempt). */
  private segmentDeltas = 0
  /** Tokens of the answer streamed by earlier (broken) segments, as reported or estimated. */
  earlierTokens = 0
  /** The prompt tokens the first upstream reported, when it did before breaking. */
  firstPromptTokens: number | undefined = undefined
  private segments = 0

  /** Reads one data event's JSON (`[DONE]` excluded) for what it adds to the answer. */
  observe(data: string): void {
    if (!this.continuable) return
    let event: unknown
    try {
      event = JSON.parse(data)
    } catch {
      this.continuable = false
      return
    }
    this.observeEvent(event)
  }

  /** As `observe`, for an event already parsed. */
  observeEvent(event: unknown): void {
    if (!this.continuable) return
    if (!isObject(event) || event["error"] !== undefined) {
      this.continuable = false
      return
    }
    const choices = event["choices"]
    if (choices === undefined || choices === null) return
    if (!Array.isArray(choices)) {
      this.continuable = false
      return
    }
    for (const choice of choices) this.observeChoice(choice)
  }

  private observeChoice(choice: unknown): void {
    if (!isObject(choice) || (choice["index"] !== undefined && choice["index"] !== 0)) {
      this.continuable = false
      return
    }
    const delta = choice["delta"]
    if (isObject(delta)) {
      for (const key in delta) {
        if (delta[key] !== null && !TEXT_DELTA_FIELDS.has(key)) {
          this.continuable = false
          return
        }
      }
      const content = delta["content"]
      if (typeof content === "string") {
        if (content.length > 0) {
          this.text += content
          this.segmentDeltas++
        }
      } else if (content !== undefined && content !== null) {
        // Content parts (an array, an object): not plain text this tracker could continue.
        this.continuable = false
        return
      }
    }
    const reason = choice["finish_reason"]
    if (reason !== undefined && reason !== null) this.finished = true
  }

  /** Whether a break now could be continued: plain text so far, and not yet finished. */
  get resumable(): boolean {
    return this.continuable && !this.finished
  }

  /**
   * Closes the current segment at a break: its share of the answer in tokens is what its upstream
   * reported, else one token per content delta (OpenAI-compatible servers stream about one token
   * per delta).
   */
  closeSegment(promptTokens: number | undefined, completionTokens: number | undefined): void {
    if (this.segments === 0) this.firstPromptTokens = promptTokens
    this.segments++
    this.earlierTokens += completionTokens ?? this.segmentDeltas
    this.segmentDeltas = 0
  }

  /**
   * The usage of the whole answer, from a continuation's own usage (whose prompt holds the
   * prefill): the first upstream's prompt (or the continuation's minus the prefill), and every
   * token of the answer.
   */
  wholeUsage(promptTokens: number, completionTokens: number): { prompt: number; completion: number } {
    const prompt = this.firstPromptTokens ?? Math.max(0, promptTokens - this.earlierTokens)
    return { prompt, completion: this.earlierTokens + completionTokens }
  }
}
