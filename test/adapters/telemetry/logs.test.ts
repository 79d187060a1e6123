// SPEC §8 log lines captured from a real server run (JsonLogger.make on an array): one JSON object
// per line, the listed events, `request_id` on every line of a request, SIDECAR_LOG_LEVEL, no secret.
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { type LifecycleDeps, makeRunner } from "../../../src/adapters/http/ProxyExchange.js"
import * as Tracing from "../../../src/adapters/telemetry/Tracing.js"
import type { HttpProxyRequest } from "../../../src/adapters/upstream/HttpExchange.js"
import * as Lifecycle from "../../../src/domain/Lifecycle.js"
import { coreLayer } from "../../../src/app/MainLayer.js"
import { MockUpstream } from "../../fakes/MockUpstream.js"
import { captureLogger, configContext, decodeConfig, post, runScenario, scenarioConfig, sleep, startSidecar } from "./harness.js"

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!()
})

type Line = Record<string, unknown>
const SECRETS = ["sk-p1-secret", "client-secret-token", "Bearer"]

const run = async (level: string, env: Record<string, string> = {}) => {
  const m = await MockUpstream.start()
  cleanup.push(() => m.close())
  const s = await startSidecar({ ...scenarioConfig(m), logging: { level } }, env)
  cleanup.push(s.stop)
  const from = s.logs.length
  const answers = await runScenario(s.url, m)
  const tagged = await post(s.url, { "x-request-id": "client-req-42" })
  await tagged.text()
  await sleep(50) // request_completed is logged once the body has ended
  const to = s.logs.length
  await s.stop()
  for (const line of s.logs) {
    expect(line.endsWith("\n")).toBe(true)
    expect(line.slice(0, -1)).not.toContain("\n")
  }
  const lines = s.logs.map((l) => JSON.parse(l) as Line)
  return { answers, raw: s.logs.join(""), lines, during: lines.slice(from, to) }
}

describe("JSON log lines", () => {
  it("one JSON object per line with level, time, msg; every request line carries its request_id; no secrets", async () => {
    const { answers, during, lines, raw } = await run("info")
    for (const l of lines) {
      expect(l).toMatchObject({ level: expect.any(String), time: expect.any(String), msg: expect.any(String) })
      expect(new Date(l["time"] as string).toISOString()).toBe(l["time"])
    }
    const msgs = new Set(lines.map((l) => l["msg"]))
    for (const event of [
      "request_completed", "backend_cooldown", "primary_wait_recovery", "primary_wait_exhausted",
      "emergency_activated", "emergency_success", "all_pools_exhausted", "upstream_error"
    ]) expect([event, msgs.has(event)]).toEqual([event, true])
    const ids = new Set([...answers.map((a) => a.id), "client-req-42"])
    // Everything logged while the requests ran belongs to one of them.
    expect(during.length).toBeGreaterThan(20)
    expect(during.filter((l) => !ids.has(l["request_id"] as string))).toEqual([])
    for (const id of ids) expect(lines.filter((l) => l["msg"] === "request_completed" && l["request_id"] === id)).toHaveLength(1)
    for (const secret of SECRETS) expect(raw).not.toContain(secret)
  })

  it("SIDECAR_LOG_LEVEL=warn overrides the file: only warn and error lines", async () => {
    const { lines } = await run("info", { SIDECAR_LOG_LEVEL: "warn" })
    expect(new Set(lines.map((l) => l["level"]))).toEqual(new Set(["warn", "error"]))
    expect(lines.some((l) => l["msg"] === "all_pools_exhausted" && l["level"] === "error")).toBe(true)
    expect(lines.some((l) => l["msg"] === "request_completed")).toBe(false)
  })

  it("a request fiber (ProxyExchange's runner): at debug, a failed lifecycle's lines all carry request_id", async () => {
    const m = await MockUpstream.start({ kind: "json", status: 429, body: { error: { message: "no" } } })
    cleanup.push(() => m.close())
    const config = decodeConfig({ ...scenarioConfig(m), logging: { level: "debug" } })
    const logs: Array<string> = []
    const layer = coreLayer.pipe(Layer.provideMerge(Layer.merge(configContext(config), captureLogger(logs, config))))
    const json = { model: "m1" }
    const request: HttpProxyRequest = {
      id: "req-fail-1", model: "m1", method: "POST", path: "/v1/chat/completions", headers: {},
      body: Buffer.from(JSON.stringify(json)), json, stream: false
    }
    let from = 0
    let to = 0
    const exit = await Effect.runPromise(Effect.gen(function*() {
      from = logs.length // after the storage's startup lines
      const fiber = makeRunner(yield* Effect.runtime<LifecycleDeps>()).fork(Lifecycle.handle(request).pipe(Tracing.withRequestSpan(request)))
      const exit = yield* fiber.await
      to = logs.length // before the storage's shutdown lines
      return exit
    }).pipe(Effect.provide(layer)))
    expect(exit._tag).toBe("Failure")
    const lines = logs.slice(from, to).map((l) => JSON.parse(l) as Line)
    expect(lines.map((l) => l["msg"])).toContain("all_pools_exhausted")
    expect(lines.filter((l) => l["request_id"] !== "req-fail-1")).toEqual([])
  })
})
