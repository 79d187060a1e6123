// The buffer behind the ledger's writer: order, capacity, and the writer's wake-up (it must never sleep on records).
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as PendingBuffer from "../../../src/adapters/sqlite/PendingBuffer.js"

describe("PendingBuffer", () => {
  it.effect("keeps order across takes and refuses beyond capacity", () =>
    Effect.gen(function*() {
      const p = yield* PendingBuffer.make<number>(5)
      expect([1, 2, 3, 4, 5, 6].map(p.offer)).toEqual([true, true, true, true, true, false])
      expect(p.take(2)).toEqual([1, 2])
      expect(p.offer(7)).toBe(true)
      expect(p.take(10)).toEqual([3, 4, 5, 7])
      expect(p.size()).toBe(0)
      expect(p.take(10)).toEqual([])
    }))

  it.effect("a writer waiting on an empty buffer wakes at the first offer, and waits again once it took everything", () =>
    Effect.gen(function*() {
      const p = yield* PendingBuffer.make<string>(10)
      const waiter = yield* Effect.fork(p.awaitSome)
      yield* Effect.yieldNow()
      expect(waiter.unsafePoll()).toBeNull()
      p.offer("a")
      yield* Fiber.join(waiter)
      p.offer("b")
      expect(p.take(1)).toEqual(["a"])
      yield* p.awaitSome // "b" is still waiting: no wait
      expect(p.take(1)).toEqual(["b"])
      const again = yield* Effect.fork(p.awaitSome)
      yield* Effect.yieldNow()
      expect(again.unsafePoll()).toBeNull()
      yield* Fiber.interrupt(again)
    }))

  it.effect("a long backlog drains in order through many partial takes", () =>
    Effect.gen(function*() {
      const n = 20_000
      const p = yield* PendingBuffer.make<number>(n)
      for (let i = 0; i < n; i++) p.offer(i)
      const out: Array<number> = []
      while (p.size() > 0) {
        out.push(...p.take(512))
        if (out.length === 10_240) for (let i = n; i < n + 100; i++) p.offer(i) // room again after takes
      }
      expect(out.length).toBe(n + 100)
      expect(out.every((v, i) => v === i)).toBe(true)
    }))
})
