/**
 * Runs an Effect program on virtual time, fast and exactly: a Clock whose sleeps end only when
 * the driver moves time, and a scheduler the driver steps, so "every fiber is waiting" is known
 * (an empty run queue), not guessed with real timers as TestClock must. Time starts at 0.
 * Sleepers wake one at a time, each run to quiescence, as under TestClock.adjust. Same-instant
 * sleepers wake in registration order, as Node's timers do; `"lifo"` wakes the latest first, as
 * TestClock does, so a program can be replayed identically on both.
 */
import { Clock, Duration, Effect, type Exit, Scheduler } from "effect"

interface Sleeper {
  readonly at: number
  readonly seq: number
  readonly wake: () => void
}

export type SameInstantOrder = "fifo" | "lifo"

/** A min-heap of sleepers by instant, then registration order (or its reverse). */
class SleeperHeap {
  private readonly items: Array<Sleeper> = []
  constructor(private readonly order: SameInstantOrder) {}
  get size() {
    return this.items.length
  }
  private before(a: Sleeper, b: Sleeper) {
    return a.at < b.at || (a.at === b.at && (this.order === "fifo" ? a.seq < b.seq : a.seq > b.seq))
  }
  push(s: Sleeper) {
    const items = this.items
    items.push(s)
    let i = items.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.before(items[i]!, items[p]!)) break
      ;[items[i], items[p]] = [items[p]!, items[i]!]
      i = p
    }
  }
  pop(): Sleeper | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (top === undefined || last === undefined || items.length === 0) return top
    items[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < items.length && this.before(items[l]!, items[m]!)) m = l
      if (r < items.length && this.before(items[r]!, items[m]!)) m = r
      if (m === i) break
      ;[items[i], items[m]] = [items[m]!, items[i]!]
      i = m
    }
    return top
  }
}

/** The virtual Clock: `now` moves only when the driver wakes a sleeper. */
class VirtualClock implements Clock.Clock {
  readonly [Clock.ClockTypeId]: Clock.ClockTypeId = Clock.ClockTypeId
  now = 0
  private seq = 0
  readonly sleepers: SleeperHeap
  private readonly cancelled = new Set<number>()
  constructor(order: SameInstantOrder) {
    this.sleepers = new SleeperHeap(order)
  }

  unsafeCurrentTimeMillis() {
    return this.now
  }
  readonly currentTimeMillis = Effect.sync(() => this.now)
  unsafeCurrentTimeNanos() {
    return BigInt(this.now) * 1_000_000n
  }
  readonly currentTimeNanos = Effect.sync(() => this.unsafeCurrentTimeNanos())
  sleep(duration: Duration.Duration): Effect.Effect<void> {
    const ms = Duration.toMillis(duration)
    if (!(ms > 0)) return Effect.void
    return Effect.async<void>((resume) => {
      const seq = this.seq++
      this.sleepers.push({ at: this.now + ms, seq, wake: () => resume(Effect.void) })
      return Effect.sync(() => this.cancelled.add(seq))
    })
  }
  /** Wakes the next sleeper that was not cancelled; false when none is left. */
  wakeNext(): boolean {
    for (;;) {
      const s = this.sleepers.pop()
      if (s === undefined) return false
      if (this.cancelled.delete(s.seq)) continue
      this.now = Math.max(this.now, s.at)
      s.wake()
      return true
    }
  }
}

export class VirtualTimeStalled extends Error {
  override readonly name = "VirtualTimeStalled"
}

/**
 * Runs `program` to completion on virtual time and returns its Exit and the final virtual instant.
 * Stops with a defect if the program waits on something other than time (nothing can wake it),
 * or after `maxWakeups` clock advances (a runaway loop).
 */
export const runVirtual = <A, E>(
  program: Effect.Effect<A, E>,
  options: { readonly maxWakeups?: number; readonly sameInstantOrder?: SameInstantOrder } = {}
): { readonly exit: Exit.Exit<A, E>; readonly now: number } => {
  const clock = new VirtualClock(options.sameInstantOrder ?? "fifo")
  const scheduler = new Scheduler.ControlledScheduler()
  const fiber = Effect.runFork(Effect.withClock(program, clock), { scheduler })
  const drain = () => {
    while (scheduler.tasks.buckets.length > 0) scheduler.step()
  }
  const limit = options.maxWakeups ?? 10_000_000
  drain()
  for (let wakeups = 0; fiber.unsafePoll() === null; wakeups++) {
    if (wakeups >= limit) throw new VirtualTimeStalled(`virtual time: more than ${limit} wake-ups`)
    if (!clock.wakeNext()) throw new VirtualTimeStalled("virtual time: the program waits on something other than time")
    drain()
  }
  return { exit: fiber.unsafePoll()!, now: clock.now }
}
