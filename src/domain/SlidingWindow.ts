/**
 * An exact sliding-window limit: at most `limit` sends in any `windowMs` interval. A token bucket
 * of capacity N lets up to 2N−1 through in one window; a log of send times does not.
 * The log keeps only the sends still inside the window, oldest first, so it never exceeds `limit`.
 */
export type SlidingWindow = ReadonlyArray<number>

export const empty: SlidingWindow = []

export const WINDOW_MS = 60_000

/** Index of the first send still inside the window ending at `now`. Sends are sorted. */
const firstLive = (log: SlidingWindow, now: number, windowMs: number): number => {
  const horizon = now - windowMs
  let lo = 0
  let hi = log.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (log[mid]! <= horizon) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Sends in the window ending at `now`. */
export const used = (log: SlidingWindow, now: number, windowMs = WINDOW_MS): number =>
  log.length - firstLive(log, now, windowMs)

export const remaining = (log: SlidingWindow, limit: number, now: number, windowMs = WINDOW_MS): number =>
  Math.max(0, limit - used(log, now, windowMs))

export const hasRoom = (log: SlidingWindow, limit: number, now: number, windowMs = WINDOW_MS): boolean =>
  used(log, now, windowMs) < limit

/** Records a send at `now`, dropping what has left the window. Call only when `hasRoom`. */
export const record = (log: SlidingWindow, now: number, windowMs = WINDOW_MS): SlidingWindow => {
  const start = firstLive(log, now, windowMs)
  const next = start === 0 ? log.slice() : log.slice(start)
  next.push(now)
  return next
}

/** The earliest instant at which one more send fits (now, if it fits already). */
export const freeAt = (log: SlidingWindow, limit: number, now: number, windowMs = WINDOW_MS): number => {
  const start = firstLive(log, now, windowMs)
  const live = log.length - start
  if (live < limit) return now
  // The (live - limit + 1)-th oldest live send must leave the window.
  return log[start + live - limit]! + windowMs
}
