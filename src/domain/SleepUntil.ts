/**
 * Sleeping until an instant of `Clock` time. Node runs timers on a monotonic clock and Effect reads
 * the time from `Date.now()`, both in whole milliseconds, so a timer can fire a millisecond before
 * the clock reaches the instant it was set for (measured: 5 of 300 20-ms timers). A wake meant for
 * the end of a cooldown that comes 1 ms early finds the backend still cooling, and the request
 * loses that try: a wasted Primary-Wait retry, or a wait-if-short backend given up on. So: sleep,
 * read the clock, and sleep the rest if the instant has not come.
 */
import { Clock, Effect } from "effect"

export const sleepUntil = (at: number): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => now >= at ? Effect.void : Effect.zipRight(Effect.sleep(at - now), sleepUntil(at)))
