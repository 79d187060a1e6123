// Persisted cooldowns: a backend benched by a 429 is still benched after a restart (not picked),
// the snapshot fiber writes changes while running, and only what changed.
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { Backend } from "../../../src/domain/Backend.js"
import { FailureClass } from "../../../src/domain/FailureClass.js"
import { FleetStore } from "../../../src/domain/ports/FleetStore.js"
import { BackendRegistry } from "../../../src/domain/ports/BackendRegistry.js"
import { backendInput, configFor, hexKey, openStorage, query, tempDir } from "./harness.js"

const env = { SIDECAR_MASTER_KEY: hexKey(4) }

const pick = (only?: string) =>
  Effect.flatMap(FleetStore, (f) => f.pick({ model: "m", pools: ["primary"], mode: "direct", only }))

/** Picks `id` and reports a 429 with a Retry-After hint: the backend cools for `hintMs`. */
const rateLimit = (id: string, hintMs: number) =>
  Effect.gen(function*() {
    const fleet = yield* FleetStore
    const ticket = Option.getOrThrow(yield* pick(id))
    return yield* fleet.report(ticket, FailureClass.RateLimited({ hintMs: Option.some(hintMs) }))
  })

const backendFrom = (id: string) => Schema.decodeUnknownSync(Backend)(backendInput(id))

type StateRow = { id: string; streak: number; cooling_until: number; reason: string | null; generation: number; updated_at: number }

describe("cooldown persistence", () => {
  it("a backend cooling at shutdown is still cooling after a restart, and is not picked", async () => {
    const db = join(tempDir(), "sidecar.db")
    const config = configFor(db, [backendInput("hot"), backendInput("cold")])
    const first = await openStorage(config, env)
    const reported = await first.run(rateLimit("hot", 60_000))
    expect(reported.coolingUntil).toBeGreaterThan(Date.now() + 50_000)
    await first.close() // the last snapshot runs at shutdown

    const second = await openStorage(config, env)
    const views = await second.run(Effect.flatMap(FleetStore, (f) => f.view))
    const hot = views.find((v) => v.backend.id === "hot")!
    expect(hot.coolingUntil).toEqual(Option.some(reported.coolingUntil))
    expect(hot.cooldownReason).toBe("rate_limited")
    expect(hot.consecutive429s).toBe(1)
    expect(await second.run(pick("hot"))).toEqual(Option.none())
    for (let i = 0; i < 4; i++) {
      expect(Option.map(await second.run(pick()), (t) => t.backend.id)).toEqual(Option.some("cold"))
    }
    // The streak survives too: the next 429 escalates from the restored one.
    const state = await second.run(Effect.flatMap(FleetStore, (f) => f.state))
    expect(state.runtime.get("hot")?.cooldown.generation).toBe(1)
    await second.close()
  })

  it("the snapshot fiber writes changed cooldowns while running, without a shutdown", async () => {
    const db = join(tempDir(), "sidecar.db")
    const storage = await openStorage(configFor(db, [backendInput("x"), backendInput("y")]), env, {
      cooldownSnapshot: "20 millis"
    })
    await storage.run(rateLimit("x", 30_000))
    await new Promise((r) => setTimeout(r, 150))
    const rows = await query<StateRow>(db, "SELECT * FROM backend_state")
    expect(rows.map((r) => [r.id, r.streak, r.reason])).toEqual([["x", 1, "rate_limited"]]) // y never changed: no row
    const written = rows[0]!.updated_at
    await new Promise((r) => setTimeout(r, 100))
    const [again] = await query<StateRow>(db, "SELECT * FROM backend_state WHERE id = 'x'")
    expect(again?.updated_at).toBe(written) // unchanged since: not rewritten
    await storage.close()
  })

  it("removing a backend deletes its state; a new backend of the same id starts healthy", async () => {
    const db = join(tempDir(), "sidecar.db")
    const config = configFor(db, [backendInput("keep")])
    const storage = await openStorage(config, env)
    await storage.run(Effect.flatMap(BackendRegistry, (r) => r.create(backendFrom("gone"))))
    await storage.run(rateLimit("gone", 60_000))
    await storage.close()
    const reopened = await openStorage(config, env)
    await reopened.run(Effect.flatMap(BackendRegistry, (r) => r.remove("gone")))
    await reopened.run(Effect.flatMap(BackendRegistry, (r) => r.create(backendFrom("gone"))))
    expect(Option.map(await reopened.run(pick("gone")), (t) => t.backend.id)).toEqual(Option.some("gone"))
    await reopened.close()
    const rows = await query<StateRow>(db, "SELECT * FROM backend_state WHERE id = 'gone'")
    expect(rows.every((r) => r.cooling_until < Date.now())).toBe(true)
  })
})

