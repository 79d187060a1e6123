/**
 * The usage ledger's buffer between the request path and its writer fiber: a plain array behind a
 * latch. Handing over a record is a push and a flag check (an Effect `Queue.offer` cost several
 * effect steps and allocations per request, measured); the writer is woken only when the buffer
 * goes from empty to not empty.
 */
import { Effect } from "effect"

export interface PendingBuffer<A> {
  /** Takes the item unless `capacity` are already waiting; false means it was dropped. */
  readonly offer: (item: A) => boolean
  /** Waits until at least one item is waiting (interruptible). */
  readonly awaitSome: Effect.Effect<void>
  /** Removes and returns up to `max` of the oldest waiting items (possibly none). */
  readonly take: (max: number) => ReadonlyArray<A>
  /** Items waiting now. */
  readonly size: () => number
}

/**
 * Invariants: items leave in the order they came; at most `capacity` wait at once; the latch is
 * open exactly when some item is waiting (every change happens in one synchronous step, so an
 * offer can never slip between the writer's take and its wait).
 */
export const make = <A>(capacity: number): Effect.Effect<PendingBuffer<A>> =>
  Effect.map(Effect.makeLatch(false), (latch) => {
    let items: Array<A> = []
    /** Index of the oldest waiting item in `items` (taken ones before it are dropped lazily). */
    let head = 0
    const size = () => items.length - head
    return {
      offer: (item) => {
        if (size() >= capacity) return false
        items.push(item)
        if (size() === 1) latch.unsafeOpen()
        return true
      },
      awaitSome: latch.await,
      take: (max) => {
        const end = Math.min(items.length, head + max)
        const batch = items.slice(head, end)
        head = end
        if (head === items.length) {
          items = []
          head = 0
          latch.unsafeClose()
        } else if (head > 4096 && head * 2 > items.length) {
          // A long backlog: drop the taken prefix now and then, not on every take.
          items = items.slice(head)
          head = 0
        }
        return batch
      },
      size
    }
  })
