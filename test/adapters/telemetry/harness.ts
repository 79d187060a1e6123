// A whole Sidecar on 127.0.0.1 from the production layers plus telemetry (wired as MainLayer should
// wire it), log lines captured; an OTLP/HTTP JSON receiver; a scripted 4-request scenario.
import { Context, Effect, Either, Exit, Layer, Logger, Scope } from "effect"
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { stringify } from "yaml"
import { AppConfig, parse } from "../../../src/adapters/config/ConfigFile.js"
import { ServerConfig, SidecarConfig, toLogLevel, toPolicy } from "../../../src/adapters/config/SidecarConfig.js"
import { HttpAddress } from "../../../src/adapters/http/ProxyServer.js"
import * as JsonLogger from "../../../src/adapters/telemetry/JsonLogger.js"
import { fromEnv, type TelemetrySettings } from "../../../src/adapters/telemetry/OtelEnv.js"
import * as Telemetry from "../../../src/adapters/telemetry/Telemetry.js"
import { Policy } from "../../../src/domain/Policy.js"
import { coreLayer, serverLayer } from "../../../src/app/MainLayer.js"
import type { MockUpstream } from "../../fakes/MockUpstream.js"

export type Env = Record<string, string | undefined>

/** The config (YAML shape) decoded as Embedded.start does, with `env` for the SIDECAR_* overrides. */
export const decodeConfig = (config: Record<string, unknown>, env: Env = {}): SidecarConfig => {
  const server = { host: "127.0.0.1", ...(config["server"] as object | undefined) }
  const storage = { sqlite: ":memory:", ...(config["storage"] as object | undefined) }
  const parsed = parse(stringify({ ...config, server, storage }), env, "test config")
  if (Either.isLeft(parsed)) throw parsed.left
  return new SidecarConfig({ ...parsed.right, server: new ServerConfig({ ...parsed.right.server, port: 0 }, true) })
}

export const configContext = (c: SidecarConfig) =>
  Layer.succeedContext(Context.make(AppConfig, c).pipe(Context.add(Policy, toPolicy(c))))

export const captureLogger = (lines: Array<string>, c: SidecarConfig) =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, JsonLogger.make((line) => lines.push(line))),
    Logger.minimumLogLevel(toLogLevel(c.logging.level))
  )

export interface Running {
  readonly url: string
  readonly logs: Array<string>
  readonly stop: () => Promise<void>
}

/**
 * The server as MainLayer wires it once telemetry is in: its routes are the admin API's plus
 * Telemetry.routes (`/metrics`), and Telemetry.tracing sits below it so its runtime has the tracer.
 */
export const telemetryServerLayer = (settings: TelemetrySettings) =>
  serverLayer(settings).pipe(Layer.provideMerge(Telemetry.tracing(settings)))

/** The whole app (storage in memory) with telemetry from `env`, log lines captured. */
export const startSidecar = async (config: Record<string, unknown>, env: Env = {}): Promise<Running> => {
  const c = decodeConfig(config, env)
  const logs: Array<string> = []
  const app = telemetryServerLayer(fromEnv(env)).pipe(
    Layer.provideMerge(coreLayer),
    Layer.provideMerge(captureLogger(logs, c)),
    Layer.provide(configContext(c))
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(app, scope))
  return { url: Context.get(context, HttpAddress).url, logs, stop: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

export interface Received {
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: unknown
}

/** An OTLP/HTTP JSON collector on 127.0.0.1: records every POST; `silent` never answers. */
export class OtlpReceiver {
  readonly received: Array<Received> = []
  private readonly sockets = new Set<Socket>()
  private readonly held = new Set<ServerResponse>()
  private constructor(private readonly server: Server, readonly port: number, private readonly silent: boolean) {}

  static async start(options: { silent?: boolean } = {}): Promise<OtlpReceiver> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const r = new OtlpReceiver(server, (server.address() as AddressInfo).port, options.silent === true)
    server.on("connection", (s) => {
      r.sockets.add(s)
      s.on("close", () => r.sockets.delete(s))
    })
    server.on("request", (req, res) => {
      const parts: Array<Buffer> = []
      req.on("data", (c: Buffer) => parts.push(c))
      req.on("end", () => {
        const text = Buffer.concat(parts).toString("utf8")
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch { /* recorded as text */ }
        r.received.push({ path: req.url ?? "", headers: req.headers, body })
        if (r.silent) return void r.held.add(res)
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    return r
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Resolves with the first received POST (from now on, if `after` is given) matching `p`. */
  async waitFor(p: (r: Received) => boolean, timeoutMs = 10_000, after = 0): Promise<Received> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const hit = this.received.slice(after).find(p)
      if (hit !== undefined) return hit
      if (Date.now() > deadline) throw new Error(`no matching OTLP POST within ${timeoutMs} ms (${this.received.length} received)`)
      await sleep(20)
    }
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy()
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A port with nothing listening (connection refused). */
export const closedPort = async (): Promise<number> => {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

export const completion = {
  id: "cmpl-1",
  object: "chat.completion",
  created: 1,
  model: "up-m1",
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 }
}
const limited = { kind: "json", status: 429, body: { error: { message: "slow down", type: "rate_limit", code: "rate_limited" } } } as const
const ok = { kind: "json", body: completion } as const

/** One primary backend; fixed 150 ms cooldowns; Primary-Wait of 2 tries; one emergency attempt. */
export const scenarioConfig = (m: MockUpstream) => ({
  logging: { level: "debug" },
  routing: { pools: ["primary"], wait_if_shorter_than_ms: 0 },
  cooldown: { base_ms: 150, multiplier: 1, honor_retry_after: false },
  primary_wait: { interval_ms: 400, max_retries: 2 },
  emergency: { max_attempts: 1 },
  backends: [{
    id: "p1",
    pool: "primary",
    base_url: `${m.url}/v1`,
    api_key: "sk-p1-secret",
    models: { m1: { upstream: "up-m1", input_per_mtok: 1, output_per_mtok: 2 } }
  }]
})

export const post = (url: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer client-secret-token", ...headers },
    body: JSON.stringify({ model: "m1", messages: [{ role: "user", content: "hi" }] })
  })

/**
 * R1 direct 200; R2 429 → Primary-Wait → 200 (recovery); R3 429 ×3 → emergency → 200; R4 429 ×4 → 503.
 * Returns each response's status, phase and request id.
 */
export const runScenario = async (url: string, m: MockUpstream) => {
  const script = [[ok], [limited, ok], [limited, limited, limited, ok], [limited, limited, limited, limited]]
  const out: Array<{ status: number; phase: string | null; id: string | null }> = []
  for (const replies of script) {
    m.reply(...replies)
    const res = await post(url)
    await res.text()
    out.push({ status: res.status, phase: res.headers.get("x-sidecar-phase"), id: res.headers.get("x-request-id") })
    await sleep(200) // the 150 ms cooldown is over before the next request
  }
  return out
}

/** What the scenario adds to each series (key: `name{k="v",…}`, labels sorted). */
export const scenarioDeltas: Record<string, number> = {
  'sidecar_requests_total{model="m1",phase="direct",status_class="2xx"}': 1,
  'sidecar_requests_total{model="m1",phase="primary_wait",status_class="2xx"}': 1,
  'sidecar_requests_total{model="m1",phase="emergency",status_class="2xx"}': 1,
  'sidecar_requests_total{model="m1",phase="exhausted",status_class="5xx"}': 1,
  'sidecar_request_duration_seconds_count{phase="direct"}': 1,
  'sidecar_request_duration_seconds_count{phase="primary_wait"}': 1,
  'sidecar_request_duration_seconds_count{phase="emergency"}': 1,
  'sidecar_request_duration_seconds_count{phase="exhausted"}': 1,
  'sidecar_upstream_attempts_total{backend="p1",outcome="success",pool="primary"}': 3,
  'sidecar_upstream_attempts_total{backend="p1",outcome="rate_limited",pool="primary"}': 8,
  'sidecar_backend_cooldowns_total{backend="p1",pool="primary",reason="rate_limited"}': 8,
  'sidecar_primary_wait_enter_total': 3,
  'sidecar_primary_wait_recovery_total': 1,
  'sidecar_primary_wait_exhausted_total': 2,
  'sidecar_emergency_activations_total': 2,
  'sidecar_emergency_success_total': 1,
  'sidecar_all_pools_exhausted_total': 1,
  'sidecar_tokens_total{backend="p1",kind="prompt",model="m1"}': 36,
  'sidecar_tokens_total{backend="p1",kind="completion",model="m1"}': 9,
  // 3 answers × (12 prompt × $1 + 3 completion × $2) per million tokens
  'sidecar_cost_usd_total{backend="p1",model="m1"}': 54e-6
}

/** `name{k="v",…}` with labels sorted, the key used for both Prometheus and OTLP values. */
export const seriesKey = (name: string, labels: Record<string, string>): string => {
  const keys = Object.keys(labels).sort()
  return keys.length === 0 ? name : `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(",")}}`
}
