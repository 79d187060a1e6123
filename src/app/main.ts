/**
 * `npm start`: loads the config (SIDECAR_CONFIG, default ./sidecar.yaml), starts Sidecar, and runs
 * until SIGTERM/SIGINT, when it stops accepting, drains in-flight requests and exits 0. An invalid
 * config exits 1 with every problem named.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import * as ConfigFile from "../adapters/config/ConfigFile.js"
import { appLayer } from "./MainLayer.js"

// The JSON logger comes with appLayer (at the configured level); adding it here too would print
// every line twice.

/** A startup failure the operator must fix: its message (never a secret) on stderr, exit 1. */
const report = (e: { readonly message: string }) =>
  Effect.sync(() => {
    process.stderr.write(`sidecar: ${e.message}\n`)
    process.exitCode = 1
  })

const main = Layer.launch(appLayer(process.env).pipe(Layer.provide(ConfigFile.layer(process.env)))).pipe(
  Effect.catchTags({
    ConfigError: report,
    StorageUnavailable: report,
    MasterKeyInvalid: report,
    MasterKeyMismatch: report,
    StoredBackendInvalid: report
  })
)

NodeRuntime.runMain(main, { disablePrettyLogger: true })
