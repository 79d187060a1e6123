// The SQLite backend registry: the config file upserted at startup (and its removals deleted),
// admin changes persisted across restarts, and every change routing (FleetStore) on return.
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { Backend } from "../../../src/domain/Backend.js"
import { BackendRegistry } from "../../../src/domain/ports/BackendRegistry.js"
import { FleetStore } from "../../../src/domain/ports/FleetStore.js"
import { backendInput, configFor, hexKey, openStorage, plain, query, tempDir } from "./harness.js"

const env = { SIDECAR_MASTER_KEY: hexKey(9) }
const decode = (id: string, fields: Parameters<typeof backendInput>[1] = {}) =>
  Schema.decodeUnknownSync(Backend)(backendInput(id, fields))

const ids = Effect.flatMap(BackendRegistry, (r) => Effect.map(r.list, (bs) => bs.map((b) => b.id)))
const fleetIds = Effect.flatMap(FleetStore, (f) => Effect.map(f.view, (vs) => vs.map((v) => v.backend.id)))

/** Which backend a direct pick in `pool` returns (the pick takes a rate slot; no rpm here). */
const pickIn = (pool: string, only?: string) =>
  Effect.flatMap(FleetStore, (f) =>
    Effect.map(f.pick({ model: "any-model", pools: [pool], mode: "direct", only }), Option.map((t) => t.backend.id)))

describe("backend registry on SQLite", () => {
  it("upserts the config file's backends at startup, in file order, and routes them", async () => {
    const db = join(tempDir(), "sidecar.db")
    const storage = await openStorage(configFor(db, [backendInput("c1"), backendInput("c2", { rpm: 10 })]), env)
    expect(await storage.run(ids)).toEqual(["c1", "c2"])
    expect(await storage.run(fleetIds)).toEqual(["c1", "c2"])
    expect(await storage.run(pickIn("primary", "c2"))).toEqual(Option.some("c2"))
    await storage.close()
    const rows = await query<{ id: string; source: string; position: number; spec: string }>(
      db,
      "SELECT id, source, position, spec FROM backends ORDER BY position"
    )
    expect(rows.map((r) => [r.id, r.source, r.position])).toEqual([["c1", "config", 0], ["c2", "config", 1]])
    expect(JSON.parse(rows[1]!.spec)).toMatchObject({ id: "c2", rpm: 10, base_url: "https://upstream.example/v1" })
    expect(rows[1]!.spec).not.toContain("api_key")
  })

  it("create, replace and remove persist across a restart and reach the FleetStore before returning", async () => {
    const db = join(tempDir(), "sidecar.db")
    const config = configFor(db, [backendInput("c1")])
    const first = await openStorage(config, env)
    await first.run(Effect.flatMap(BackendRegistry, (r) =>
      Effect.all([
        r.create(decode("a1", { pool: "fallback" })),
        r.create(decode("a2", { pool: "fallback" })),
        r.create(decode("a3", { pool: "fallback" }))
      ])))
    expect(await first.run(pickIn("fallback", "a1"))).toEqual(Option.some("a1"))
    await first.run(Effect.flatMap(BackendRegistry, (r) => r.replace(decode("a1", { pool: "fallback", rpm: 7, api_key: "sk-rotated-key-777777" }))))
    await first.run(Effect.flatMap(BackendRegistry, (r) => r.replace(decode("a3", { pool: "fallback", enabled: false }))))
    await first.run(Effect.flatMap(BackendRegistry, (r) => r.remove("a2")))
    expect(await first.run(fleetIds)).toEqual(["c1", "a1", "a3"])
    expect(await first.run(pickIn("fallback", "a3"))).toEqual(Option.none()) // disabled
    expect(await first.run(pickIn("fallback", "a2"))).toEqual(Option.none()) // removed
    await first.close()

    const second = await openStorage(config, env)
    const list = await second.run(Effect.flatMap(BackendRegistry, (r) => r.list))
    expect(list.map((b) => [b.id, b.pool, b.enabled])).toEqual([
      ["c1", "primary", true],
      ["a1", "fallback", true],
      ["a3", "fallback", false]
    ])
    expect(list[1]!.rpm).toBe(7)
    expect(plain(list[1]!.apiKey)).toBe("sk-rotated-key-777777")
    expect(await second.run(pickIn("fallback"))).toEqual(Option.some("a1"))
    expect(await second.run(pickIn("fallback", "a3"))).toEqual(Option.none())
    // A new backend goes after the others, and keeps that place after a restart.
    await second.run(Effect.flatMap(BackendRegistry, (r) => r.create(decode("a4"))))
    await second.close()
    const third = await openStorage(config, env)
    expect(await third.run(ids)).toEqual(["c1", "a1", "a3", "a4"])
    await third.close()
  })

  it("the port's errors: create of an existing id, replace or remove of an unknown one", async () => {
    const storage = await openStorage(configFor(join(tempDir(), "s.db"), [backendInput("c1")]), env)
    const errors = await storage.run(Effect.flatMap(BackendRegistry, (r) =>
      Effect.all([
        Effect.flip(r.create(decode("c1"))),
        Effect.flip(r.replace(decode("nope"))),
        Effect.flip(r.remove("nope"))
      ])))
    await storage.close()
    expect(errors.map((e) => e._tag)).toEqual(["BackendExists", "BackendNotFound", "BackendNotFound"])
  })

  it("config wins: a backend dropped from the file is deleted, a changed one updated, an admin one of the same id replaced", async () => {
    const db = join(tempDir(), "sidecar.db")
    const first = await openStorage(configFor(db, [backendInput("c1"), backendInput("c2")]), env)
    await first.run(Effect.flatMap(BackendRegistry, (r) =>
      Effect.all([r.create(decode("shared", { rpm: 1 })), r.create(decode("a1"))])))
    await first.close()

    const next = configFor(db, [backendInput("c1", { rpm: 99 }), backendInput("shared", { rpm: 2, api_key: "sk-from-the-file-2222" })])
    const second = await openStorage(next, env)
    const list = await second.run(Effect.flatMap(BackendRegistry, (r) => r.list))
    expect(list.map((b) => [b.id, b.rpm])).toEqual([["c1", 99], ["shared", 2], ["a1", undefined]])
    expect(plain(list[1]!.apiKey)).toBe("sk-from-the-file-2222")
    expect(await second.run(fleetIds)).toEqual(["c1", "shared", "a1"])
    await second.close()
    const rows = await query<{ id: string; source: string }>(db, "SELECT id, source FROM backends ORDER BY position")
    expect(rows).toEqual([{ id: "c1", source: "config" }, { id: "shared", source: "config" }, { id: "a1", source: "admin" }])
  })

  it("an unchanged config is not rewritten at startup", async () => {
    const db = join(tempDir(), "sidecar.db")
    const config = configFor(db, [backendInput("c1")])
    await (await openStorage(config, env)).close()
    const [before] = await query<{ updated_at: number; n: Uint8Array }>(db, "SELECT updated_at, key_nonce AS n FROM backends")
    await (await openStorage(config, env)).close()
    const [after] = await query<{ updated_at: number; n: Uint8Array }>(db, "SELECT updated_at, key_nonce AS n FROM backends")
    expect(after?.updated_at).toBe(before?.updated_at)
    expect(Buffer.from(after!.n).equals(Buffer.from(before!.n))).toBe(true)
  })
})
