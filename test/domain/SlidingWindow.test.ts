// SlidingWindow: the exact `rpm` limit — N sends in any 60 s window, freed exactly 60 000 ms after
// the oldest send — with a property test that no (t-60000, t] window ever holds more than the limit.
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import * as Window from "../../src/domain/SlidingWindow.js"

const T0 = 1_000_000

/** Records `n` sends at the given instants (or all at T0), checking each had room. */
const sends = (limit: number, at: ReadonlyArray<number>): Window.SlidingWindow =>
  at.reduce<Window.SlidingWindow>((log, t) => {
    if (!Window.hasRoom(log, limit, t)) throw new Error(`no room at ${t}`)
    return Window.record(log, t)
  }, Window.empty)

describe("SlidingWindow", () => {
  it("limit N allows N sends in a burst and refuses the N+1th", () => {
    const log = sends(3, [T0, T0, T0])
    expect(Window.used(log, T0)).toBe(3)
    expect(Window.remaining(log, 3, T0)).toBe(0)
    expect(Window.hasRoom(log, 3, T0)).toBe(false)
  })

  it("frees exactly 60 000 ms after the oldest send, not a millisecond earlier", () => {
    const log = sends(2, [T0, T0 + 10_000])
    expect(Window.hasRoom(log, 2, T0 + 59_999)).toBe(false)
    expect(Window.hasRoom(log, 2, T0 + 60_000)).toBe(true)
    expect(Window.used(log, T0 + 59_999)).toBe(2)
    expect(Window.used(log, T0 + 60_000)).toBe(1)
    expect(Window.used(log, T0 + 70_000)).toBe(0)
  })

  it.each([
    // [limit, send times (offsets from T0), now offset, freeAt offset]
    [3, [0, 1000, 2000], 2000, 60_000],
    [3, [0, 1000, 2000], 60_000, 60_000], // the first send has left: room now
    [3, [0, 1000, 2000], 61_000, 61_000],
    [3, [0, 1000], 2000, 2000], // room now
    [1, [500], 500, 60_500],
    [2, [0, 0], 30_000, 60_000]
  ])("freeAt (limit %i, sends %j, now +%i) = +%i", (limit, at, now, free) => {
    const log = at.reduce<Window.SlidingWindow>((l, t) => Window.record(l, T0 + t), Window.empty)
    expect(Window.freeAt(log, limit, T0 + now)).toBe(T0 + free)
  })

  it("freeAt names the first instant with room, and no earlier one", () => {
    const log = sends(3, [T0, T0 + 1000, T0 + 2000])
    const now = T0 + 3000
    const free = Window.freeAt(log, 3, now)
    expect(Window.hasRoom(log, 3, free)).toBe(true)
    expect(Window.hasRoom(log, 3, free - 1)).toBe(false)
  })

  it("remaining and used follow the window", () => {
    const log = sends(5, [T0, T0 + 20_000, T0 + 40_000])
    expect([Window.used(log, T0 + 40_000), Window.remaining(log, 5, T0 + 40_000)]).toEqual([3, 2])
    expect([Window.used(log, T0 + 60_000), Window.remaining(log, 5, T0 + 60_000)]).toEqual([2, 3])
    expect([Window.used(log, T0 + 80_000), Window.remaining(log, 5, T0 + 80_000)]).toEqual([1, 4])
    expect([Window.used(log, T0 + 100_000), Window.remaining(log, 5, T0 + 100_000)]).toEqual([0, 5])
  })

  it("remaining never goes negative", () => {
    const log = [T0, T0, T0, T0] // more than the limit (e.g. the limit was lowered)
    expect(Window.remaining(log, 2, T0)).toBe(0)
  })

  it("record drops the sends that left the window and does not mutate its input", () => {
    const log = sends(10, [T0, T0 + 1000, T0 + 2000])
    const copy = [...log]
    const next = Window.record(log, T0 + 61_000)
    expect(next).toEqual([T0 + 2000, T0 + 61_000])
    expect(log).toEqual(copy)
  })

  it("a custom window length", () => {
    const log = sends(1, [T0])
    expect(Window.hasRoom(log, 1, T0 + 999, 1000)).toBe(false)
    expect(Window.hasRoom(log, 1, T0 + 1000, 1000)).toBe(true)
    expect(Window.freeAt(log, 1, T0, 1000)).toBe(T0 + 1000)
  })

  it("property: recording only when hasRoom, no 60 s window (t-60000, t] ever holds more than the limit", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.integer({ min: 1, max: 8 }),
        // Gaps between attempts: many zeros (bursts), some long ones.
        FastCheck.array(FastCheck.oneof(FastCheck.constant(0), FastCheck.integer({ min: 0, max: 20_000 })), {
          minLength: 1,
          maxLength: 200
        }),
        (limit, gaps) => {
          let log = Window.empty
          let t = 0
          const accepted: Array<number> = []
          for (const gap of gaps) {
            t += gap
            const room = Window.hasRoom(log, limit, t)
            // hasRoom agrees with a brute-force count over everything accepted so far.
            const inWindow = accepted.filter((s) => s > t - Window.WINDOW_MS && s <= t).length
            if (room !== inWindow < limit) return false
            if (Window.remaining(log, limit, t) !== Math.max(0, limit - inWindow)) return false
            if (room) {
              log = Window.record(log, t)
              accepted.push(t)
            } else {
              const free = Window.freeAt(log, limit, t)
              if (!(free > t) || !Window.hasRoom(log, limit, free) || Window.hasRoom(log, limit, free - 1)) return false
            }
            if (log.length > limit) return false
          }
          // Every window ending at an accepted send holds at most `limit` sends.
          return accepted.every((end) => accepted.filter((s) => s > end - Window.WINDOW_MS && s <= end).length <= limit)
        }
      ),
      { numRuns: 300 }
    )
  })
})
