// The completion pump: every request's follow-up work runs once, in order, `then` right after it,
// never on the caller's time; a defect in one is logged and does not stop the others.
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Logger } from "effect"
import * as CompletionPump from "../../../src/adapters/http/CompletionPump.js"

describe("CompletionPump", () => {
  it.effect("runs work in arrival order, each `then` right after its work, and survives a defect", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const logged: Array<string> = []
      const runtime = yield* Effect.runtime<never>().pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logged.push(String(message)))))
      )
      const pump = CompletionPump.make(runtime)
      const all = yield* Deferred.make<void>()
      pump.complete(Effect.sync(() => void seen.push("work 1")), () => seen.push("then 1"))
      pump.complete(Effect.die("boom"), () => seen.push("then 2"))
      pump.complete(Effect.sync(() => void seen.push("work 3")), () => {
        seen.push("then 3")
        Deferred.unsafeDone(all, Effect.void)
      })
      expect(seen).toEqual([]) // nothing runs on the caller's time
      yield* Deferred.await(all)
      expect(seen).toEqual(["work 1", "then 1", "then 2", "work 3", "then 3"])
      expect(logged).toEqual(["request completion failed"])
      // Idle again, it runs the next one too.
      const next = yield* Deferred.make<void>()
      pump.complete(Effect.void, () => Deferred.unsafeDone(next, Effect.void))
      yield* Deferred.await(next)
    }))
})
