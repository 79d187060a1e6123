// GET /metrics on Sidecar's own port after a scripted scenario through the real HTTP server: the
// exact SPEC §7 names and types, the scenario's counts (as deltas: the registry is process-global),
// the Primary-Wait funnel identities, and the live fleet gauges.
import { afterEach, describe, expect, it } from "@effect/vitest"
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import { MockUpstream } from "../../fakes/MockUpstream.js"
import { type Env, post, runScenario, scenarioConfig, scenarioDeltas, sleep, startSidecar } from "./harness.js"
import { closeTo, deltasFor, fromPrometheus } from "./series.js"

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!()
})

const upstream = async () => {
  const m = await MockUpstream.start({ kind: "json", body: { ok: true } })
  cleanup.push(() => m.close())
  return m
}
const sidecar = async (config: Record<string, unknown>, env: Env = {}) => {
  const s = await startSidecar(config, env)
  cleanup.push(s.stop)
  return s
}
const scrape = async (url: string) => {
  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toContain("text/plain")
  return res.text()
}

/** Polls until the scenario's requests are all counted (request_completed is recorded when the body ends). */
const settled = async (url: string, before: Map<string, number>, key: string, delta: number) => {
  for (let i = 0; i < 100; i++) {
    const now = fromPrometheus(await scrape(url))
    if ((now.get(key) ?? 0) - (before.get(key) ?? 0) >= delta) return now
    await sleep(20)
  }
  throw new Error(`${key} never reached +${delta}`)
}

const specTypes: Record<string, string> = {
  sidecar_requests_total: "COUNTER",
  sidecar_request_duration_seconds: "HISTOGRAM",
  sidecar_upstream_attempts_total: "COUNTER",
  sidecar_backend_cooldowns_total: "COUNTER",
  sidecar_backend_in_cooldown: "GAUGE",
  sidecar_primary_wait_enter_total: "COUNTER",
  sidecar_primary_wait_recovery_total: "COUNTER",
  sidecar_primary_wait_exhausted_total: "COUNTER",
  sidecar_emergency_activations_total: "COUNTER",
  sidecar_emergency_success_total: "COUNTER",
  sidecar_all_pools_exhausted_total: "COUNTER",
  sidecar_tokens_total: "COUNTER",
  sidecar_cost_usd_total: "COUNTER"
}

describe("Prometheus /metrics", () => {
  it("a scenario's exact counts, SPEC §7 names and types, and the funnel identities", async () => {
    const m = await upstream()
    const s = await sidecar(scenarioConfig(m))
    const before = fromPrometheus(await scrape(s.url))
    // The funnel counters are exported (at 0 in a fresh process) before their first event.
    for (const n of ["enter", "recovery", "exhausted"]) expect(before.has(`sidecar_primary_wait_${n}_total`)).toBe(true)
    for (const n of ["emergency_activations", "emergency_success", "all_pools_exhausted"]) expect(before.has(`sidecar_${n}_total`)).toBe(true)
    const seen = m.requests.length
    const answers = await runScenario(s.url, m)
    // 3 answers and 8 429s: on any machine, as a wake at a cooldown's end never comes before it.
    expect(m.requests.length - seen).toBe(11)
    const expected = scenarioDeltas
    expect(answers.map((a) => [a.status, a.phase])).toEqual([
      [200, "direct"], [200, "primary_wait"], [200, "emergency"], [503, "exhausted"]
    ])
    const after = await settled(s.url, before, 'sidecar_requests_total{model="m1",phase="exhausted",status_class="5xx"}', 1)
    expect(closeTo(deltasFor(expected, before, after), expected)).toEqual(expected)

    const d = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0)
    expect(d("sidecar_primary_wait_enter_total")).toBe(d("sidecar_primary_wait_recovery_total") + d("sidecar_primary_wait_exhausted_total"))
    expect(d("sidecar_primary_wait_exhausted_total")).toBe(d("sidecar_emergency_activations_total"))

    const text = await scrape(s.url)
    const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]))
    for (const [name, type] of Object.entries(specTypes)) expect([name, families.get(name)?.type]).toEqual([name, type])
    // Only SPEC's labels: no otel_scope_name, and nothing but sidecar_* besides target_info.
    expect(text).not.toContain("otel_scope_name")
    expect([...families.keys()].filter((n) => !n.startsWith("sidecar_"))).toEqual(["target_info"])
    expect(text).toMatch(/^sidecar_request_duration_seconds_bucket\{phase="direct",le="0\.005"\} /m)
  })

  it("live gauges from the fleet at scrape time: in cooldown 1/0, rate-window headroom for backends with rpm", async () => {
    const a = await upstream()
    const b = await upstream()
    const c = await upstream()
    a.setFallback({ kind: "json", status: 429, headers: { "retry-after": "60" }, body: { error: { message: "later" } } })
    const backend = (id: string, m: MockUpstream, rpm?: number) => ({
      id, pool: "primary", base_url: `${m.url}/v1`, api_key: `sk-${id}`, ...(rpm === undefined ? {} : { rpm })
    })
    const s = await sidecar({
      logging: { level: "off" },
      routing: { wait_if_shorter_than_ms: 0 },
      backends: [backend("a", a, 5), backend("b", b, 10), backend("c", c)]
    })
    const before = fromPrometheus(await scrape(s.url))
    expect(before.get('sidecar_backend_in_cooldown{backend="a",pool="primary"}')).toBe(0)
    expect(before.get('sidecar_backend_rate_window_remaining{backend="a",pool="primary"}')).toBe(5)
    for (let i = 0; i < 2; i++) expect((await post(s.url)).status).toBe(200) // a 429 → b; then c (round-robin)
    const now = fromPrometheus(await scrape(s.url))
    expect(Object.fromEntries([...now].filter(([k]) => k.startsWith("sidecar_backend_") && !k.includes("cooldowns_total")))).toEqual({
      'sidecar_backend_in_cooldown{backend="a",pool="primary"}': 1,
      'sidecar_backend_in_cooldown{backend="b",pool="primary"}': 0,
      'sidecar_backend_in_cooldown{backend="c",pool="primary"}': 0,
      'sidecar_backend_rate_window_remaining{backend="a",pool="primary"}': 4,
      'sidecar_backend_rate_window_remaining{backend="b",pool="primary"}': 9
    })
  })

  it("only GET/HEAD on exactly /metrics; OTEL_METRICS_EXPORTER without prometheus turns it off", async () => {
    const m = await upstream()
    const s = await sidecar(scenarioConfig(m))
    expect((await fetch(`${s.url}/metrics`, { method: "POST", body: "x" })).status).toBe(405)
    expect((await fetch(`${s.url}/metricsx`)).status).toBe(404)
    expect((await fetch(`${s.url}/metrics?name=x`)).status).toBe(200)
    const off = await sidecar(scenarioConfig(m), { OTEL_METRICS_EXPORTER: "none" })
    expect((await fetch(`${off.url}/metrics`)).status).toBe(404)
  })
})
