/**
 * The usage ledger's bounded buffer between the request path and the writer fiber: a plain
 * array behind a latch. Accepting a record is a push and a flag check (an Effect `Queue.offer`
 * cost several effect steps and allocations per request, measured); the writer is woken only
 * when the buffer goes from empty to not empty.
 */
import { Effect } from "effect"

export interface PendingRecords<A> {
  /** Takes the record unless `capacity` are already waiting; false means it was dropped. */
  readonly offer: (record: A) => boolean
  /** Waits until at least one record is waiting (interruptible). */
  readonly awaitSome: Effect.Effect<void>
  /** Removes and returns up to `max` of the oldest waiting records (possibly none). */
  readonly take: (max: number) => ReadonlyArray<A>
  /** Records waiting now. */
  readonly size: () => number
}

/**
 * Invariants: records leave in the order they came; at most `capacity` wait at once; the latch is
 * open exactly when some record is waiting (every change happens in one synchronous step, so an
 * offer can never slip between the writer's take and its wait).
 */
export const make = <A>(capacity: number): Effect.Effect<PendingRecords<A>> =>
  Effect.map(Effect.makeLatch(false), (latch) => {
    let items: Array<A> = []
    /** Index of the oldest waiting record in `items` (taken ones before it are dropped lazily). */
    let head = 0
    const size = () => items.length - head
    return {
      offer: (record) => {
        if (size() >= capacity) return false
        items.push(record)
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
