// API keys at rest: never in plaintext in the database files, sealed under the master key from
// SIDECAR_MASTER_KEY or a 0600 key file, and a wrong or malformed key stops startup by name.
import { existsSync, readFileSync, statSync, unlinkSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Option, Schema } from "effect"
import * as MasterKey from "../../../src/adapters/secrets/MasterKey.js"
import { Backend } from "../../../src/domain/Backend.js"
import { BackendRegistry } from "../../../src/domain/ports/BackendRegistry.js"
import { backendInput, configFor, hexKey, openStorage, plain, query, startupError, tempDir } from "./harness.js"

const ENV = "SIDECAR_MASTER_KEY"

describe("master key formats", () => {
  const key = Buffer.alloc(32, 7)
  it.each([
    ["64 hex digits", key.toString("hex")],
    ["upper-case hex", key.toString("hex").toUpperCase()],
    ["base64", key.toString("base64")],
    ["base64 without padding", key.toString("base64").replace(/=+$/, "")],
    ["url-safe base64", Buffer.alloc(32, 0xfb).toString("base64url")],
    ["surrounding whitespace", `  ${key.toString("hex")}\n`]
  ])("accepts %s", (_, text) => {
    expect(Either.isRight(MasterKey.parseKey(text))).toBe(true)
  })

  it.each([
    ["31 bytes of base64", Buffer.alloc(31, 1).toString("base64"), /31 bytes/],
    ["33 bytes of base64", Buffer.alloc(33, 1).toString("base64"), /33 bytes/],
    ["62 hex digits", Buffer.alloc(31, 0xab).toString("hex"), /bytes|base64/],
    ["not hex nor base64", "this is not a key!", /neither hex nor base64/],
    ["broken base64", "abc=def", /not valid base64|neither/]
  ])("refuses %s, naming SIDECAR_MASTER_KEY and never echoing the value", async (_, value, reason) => {
    const exit = await Effect.runPromiseExit(MasterKey.load({ env: { [ENV]: value }, keyFile: "/nonexistent/k" }))
    expect(Exit.isFailure(exit)).toBe(true)
    const error = await startupError(configFor(join(tempDir(), "s.db")), { [ENV]: value })
    expect(error._tag).toBe("MasterKeyInvalid")
    expect(error.message).toContain(ENV)
    expect(error.message).toMatch(reason)
    expect(error.message).not.toContain(value)
  })
})

describe("master key file", () => {
  it("is created once with mode 0600 when SIDECAR_MASTER_KEY is unset, with a warning naming the file, then reused", async () => {
    const dir = tempDir()
    const db = join(dir, "sidecar.db")
    const keyFile = join(dir, MasterKey.KEY_FILE_NAME)
    const config = configFor(db, [backendInput("a")])
    const first = await openStorage(config, {})
    await first.close()
    expect(existsSync(keyFile)).toBe(true)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const content = readFileSync(keyFile, "utf8")
    const warning = first.logs.find((l) => l.level === "WARN" && l.message.includes(ENV))
    expect(warning?.annotations["key_file"]).toBe(keyFile)
    expect(JSON.stringify(first.logs)).not.toContain(content.trim())

    const second = await openStorage(config, { [ENV]: "" }) // empty = unset
    const key = await second.run(Effect.flatMap(BackendRegistry, (r) => r.get("a")))
    await second.close()
    expect(readFileSync(keyFile, "utf8")).toBe(content)
    expect(second.logs.some((l) => l.level === "WARN")).toBe(false)
    expect(plain(Option.getOrThrow(key).apiKey)).toBe("sk-secret-a-0123456789abcdef")
  })

  it("a replaced key file does not decrypt the stored keys: MasterKeyMismatch naming SIDECAR_MASTER_KEY", async () => {
    const dir = tempDir()
    const config = configFor(join(dir, "sidecar.db"))
    const storage = await openStorage(config, {})
    await storage.run(Effect.flatMap(BackendRegistry, (r) => r.create(Schema.decodeUnknownSync(Backend)(backendInput("adm")))))
    await storage.close()
    unlinkSync(join(dir, MasterKey.KEY_FILE_NAME))
    const error = await startupError(config, {})
    expect(error._tag).toBe("MasterKeyMismatch")
    expect(error.message).toContain(ENV)
  })
})

const decode = (id: string) => Schema.decodeUnknownSync(Backend)(backendInput(id))

/** Every file SQLite and the master key live in. */
const filesOf = (dir: string, db: string) =>
  [db, `${db}-wal`, `${db}-shm`, join(dir, MasterKey.KEY_FILE_NAME)].filter((f) => existsSync(f))

describe("keys at rest", () => {
  const ids = ["cfg-1", "cfg-2", "adm-1", "adm-2", "adm-3"]
  const secrets = ids.map((id) => backendInput(id).api_key as string)

  const setUp = async (env: Record<string, string>) => {
    const dir = tempDir()
    const db = join(dir, "sidecar.db")
    const config = configFor(db, [backendInput("cfg-1"), backendInput("cfg-2")])
    const storage = await openStorage(config, env)
    await storage.run(Effect.flatMap(BackendRegistry, (r) =>
      Effect.forEach(["adm-1", "adm-2", "adm-3"], (id) => r.create(decode(id)))))
    // A replace re-seals under a fresh nonce.
    await storage.run(Effect.flatMap(BackendRegistry, (r) => r.replace(decode("adm-2"))))
    return { dir, db, config, storage }
  }

  const scan = (files: ReadonlyArray<string>) => {
    for (const file of files) {
      const bytes = readFileSync(file)
      for (const secret of secrets) {
        expect(bytes.includes(Buffer.from(secret)), `${secret} in ${file}`).toBe(false)
        expect(bytes.includes(Buffer.from(secret.slice(-12))), `tail of ${secret} in ${file}`).toBe(false)
      }
    }
  }

  it("no plaintext key in the database, its -wal and -shm files, the key file, or a log line", async () => {
    const { db, dir, storage } = await setUp({})
    expect(filesOf(dir, db).length).toBeGreaterThanOrEqual(3) // db, -wal and the key file at least
    scan(filesOf(dir, db)) // while open: the WAL holds the latest writes
    await storage.close()
    scan(filesOf(dir, db))
    const logText = JSON.stringify(storage.logs)
    for (const secret of secrets) expect(logText).not.toContain(secret)
    const nonces = await query<{ n: Uint8Array }>(db, "SELECT key_nonce AS n FROM backends")
    expect(new Set(nonces.map((r) => Buffer.from(r.n).toString("hex"))).size).toBe(ids.length)
  })

  it("the same SIDECAR_MASTER_KEY decrypts them after a restart; another one is refused by name", async () => {
    const { config, storage } = await setUp({ [ENV]: hexKey(1) })
    await storage.close()
    const again = await openStorage(config, { [ENV]: Buffer.alloc(32, 1).toString("base64") }) // same key, other encoding
    const keys = await again.run(Effect.flatMap(BackendRegistry, (r) => r.list))
    await again.close()
    expect(keys.map((b) => plain(b.apiKey))).toEqual(secrets)

    const error = await startupError(config, { [ENV]: hexKey(2) })
    expect(error._tag).toBe("MasterKeyMismatch")
    expect(error.message).toContain(ENV)
    expect(error.message).not.toContain(hexKey(2))
    for (const secret of secrets) expect(error.message).not.toContain(secret)
  })

  it("a sealed key moved into another backend's row does not decrypt (the id is associated data)", async () => {
    const { config, db, storage } = await setUp({ [ENV]: hexKey(3) })
    await storage.close()
    await query(db, `UPDATE backends SET (key_ciphertext, key_nonce, key_tag) =
      (SELECT key_ciphertext, key_nonce, key_tag FROM backends WHERE id = 'adm-1') WHERE id = 'adm-3'`)
    const error = await startupError(config, { [ENV]: hexKey(3) })
    expect(error._tag).toBe("MasterKeyMismatch")
    expect(error._tag === "MasterKeyMismatch" && error.backends).toEqual(["adm-3"])
    expect(error.message).toContain("adm-3")
  })
})
