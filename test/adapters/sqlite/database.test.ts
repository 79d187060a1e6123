// The database file: created with its directory, migrated once (reopening is idempotent), in WAL
// mode, and a file that is not a database is a tagged startup error naming the path.
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import { ReadinessChecks } from "../../../src/adapters/http/HttpRoutes.js"
import * as Database from "../../../src/adapters/sqlite/Database.js"
import { BackendRegistry } from "../../../src/domain/ports/BackendRegistry.js"
import { backendInput, configFor, openStorage, query, startupError, tempDir } from "./harness.js"

describe("database", () => {
  it("a fresh file (in a directory that does not exist yet) gets the schema, in WAL mode", async () => {
    const db = join(tempDir(), "nested", "dir", "sidecar.db")
    const tables = await query<{ name: string }>(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(["backend_state", "backends", "effect_sql_migrations", "meta", "usage"])
    )
    const indexes = await query<{ name: string }>(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage'")
    // Only the time index: the ledger is written on every request, and every report is a time range.
    expect(indexes.map((i) => i.name)).toEqual(["usage_at"])
    const [mode] = await query<{ journal_mode: string }>(db, "PRAGMA journal_mode")
    expect(mode?.journal_mode).toBe("wal")
  })

  it("reopening runs no migration twice and keeps the data", async () => {
    const db = join(tempDir(), "sidecar.db")
    await query(db, "INSERT INTO meta (key, value) VALUES ('probe', x'01')")
    await query(db, "SELECT 1")
    await query(db, "SELECT 1")
    const migrations = await query<{ migration_id: number; name: string }>(db, "SELECT migration_id, name FROM effect_sql_migrations")
    expect(migrations).toEqual([
      { migration_id: 1, name: "initial" },
      { migration_id: 2, name: "stream_end" },
      { migration_id: 3, name: "lean_usage_indexes" }
    ])
    const probe = await query<{ key: string }>(db, "SELECT key FROM meta WHERE key = 'probe'")
    expect(probe).toHaveLength(1)
  })

  it("sets synchronous = NORMAL and a busy timeout on the connection", async () => {
    const db = join(tempDir(), "sidecar.db")
    const [sync] = await query<{ synchronous: number }>(db, "PRAGMA synchronous")
    const [busy] = await query<{ timeout: number }>(db, "PRAGMA busy_timeout")
    expect(sync?.synchronous).toBe(1) // NORMAL
    expect(busy?.timeout).toBe(Database.BUSY_TIMEOUT_MS)
  })

  it("a file that is not a database fails with StorageUnavailable naming the path", async () => {
    const db = join(tempDir(), "garbage.db")
    writeFileSync(db, "this is not a database, just some text that is long enough to be a header".repeat(20))
    const exit = await Effect.runPromiseExit(Effect.scoped(Database.open(db)))
    expect(Exit.isFailure(exit)).toBe(true)
    const error = await startupError(configFor(db), {})
    expect(error._tag).toBe("StorageUnavailable")
    expect(error.message).toContain(db)
    expect(error.message).toMatch(/not a database/)
  })

  it("`:memory:` works without a master key or key file (a random key for the process)", async () => {
    const storage = await openStorage(configFor(":memory:", [backendInput("m1")]), {})
    const list = await storage.run(Effect.flatMap(BackendRegistry, (r) => r.list))
    await storage.close()
    expect(list.map((b) => b.id)).toEqual(["m1"])
    expect(existsSync(join(process.cwd(), "sidecar.master.key"))).toBe(false)
    expect(storage.logs.some((l) => l.level === "WARN")).toBe(false)
  })

  it("the readiness check answers while the database does, and names storage when it does not", async () => {
    const storage = await openStorage(configFor(join(tempDir(), "r.db")), {})
    const checks = await storage.run(ReadinessChecks)
    expect(await storage.run(Effect.forEach(checks, (c) => c))).toEqual([Option.none()])
    await storage.close()
    const after = await Effect.runPromise(Effect.forEach(checks, (c) => c))
    expect(after).toEqual([Option.some("storage: the database does not answer")])
  })

  it("a path whose directory cannot be created fails with StorageUnavailable", async () => {
    const file = join(tempDir(), "a-file")
    writeFileSync(file, "x")
    const error = await startupError(configFor(join(file, "sub", "sidecar.db")), {})
    expect(error._tag).toBe("StorageUnavailable")
    expect(error.message).toContain("storage.sqlite")
  })
})
