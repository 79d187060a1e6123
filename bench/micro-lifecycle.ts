/**
 * `npx tsx bench/micro-lifecycle.ts [N]`: Lifecycle.handle alone, in-process, on the in-memory
 * adapters, the production metrics projection (logs at warn) and an upstream that answers 200 at
 * once — the Effect side of a served request, without sockets. Prints µs per request per round.
 */
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Schema } from "effect"
import * as FleetStoreMemory from "../src/adapters/memory/FleetStoreMemory.js"
import * as UsageLogMemory from "../src/adapters/memory/UsageLogMemory.js"
import { Backend } from "../src/domain/Backend.js"
import * as Lifecycle from "../src/domain/Lifecycle.js"
import { Observation } from "../src/domain/FailureClass.js"
import { Policy, PolicyConfig } from "../src/domain/Policy.js"
import { LifecycleEvents } from "../src/domain/ports/LifecycleEvents.js"
import { Upstream } from "../src/domain/ports/Upstream.js"
import * as MetricsAndLogs from "../src/adapters/telemetry/MetricsAndLogs.js"

const backends = [Schema.decodeUnknownSync(Backend)({ id: "a", pool: "primary", base_url: "http://x/v1" })]
const policy = Schema.decodeUnknownSync(PolicyConfig)({})
const usage: Array<unknown> = []
const reply = { observation: Observation.Response({ status: 200, headers: {} }), response: { status: 200 } }
const upstream = Layer.succeed(Upstream, Upstream.of({ send: () => Effect.async((resume) => { resume(Effect.succeed(reply)) }) }))
const events = Layer.succeed(LifecycleEvents, MetricsAndLogs.make((m) => Effect.succeed(m), LogLevel.Warning))
const layer = Layer.mergeAll(upstream, UsageLogMemory.layer(usage as never), events).pipe(
  Layer.provideMerge(FleetStoreMemory.layer(backends)),
  Layer.provideMerge(Layer.succeed(Policy, policy)),
  Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)),
  // As in production without an OTLP traces endpoint: no tracer runs.
  Layer.provide(Layer.setTracerEnabled(false))
)
const rt = ManagedRuntime.make(layer)
const N = Number(process.argv[2] ?? 20000)
const run = async () => {
  for (let round = 0; round < 4; round++) {
    const t0 = performance.now()
    for (let i = 0; i < N; i++) {
      await rt.runPromise(Lifecycle.handle({ id: "r" + i, model: "m" }))
    }
    const dt = performance.now() - t0
    console.log(`round ${round}: ${(dt * 1000 / N).toFixed(1)} µs/request`)
    usage.length = 0
  }
  await rt.dispose()
}
run()
