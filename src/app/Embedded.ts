/**
 * Starts a whole Sidecar inside the current process from a config object: for the demo, the
 * benchmark and end-to-end tests. Same layers as `npm start`, minus reading a file.
 */
import { Context, Effect, Either, Exit, Layer, Scope } from "effect"
import { stringify } from "yaml"
import { AppConfig, parse } from "../adapters/config/ConfigFile.js"
import { ServerConfig, SidecarConfig, toPolicy } from "../adapters/config/SidecarConfig.js"
import { HttpAddress } from "../adapters/http/ProxyServer.js"
import { Policy } from "../domain/Policy.js"
import { appLayer } from "./MainLayer.js"

export interface RunningSidecar {
  /** Base URL, e.g. `http://127.0.0.1:41234`; point an OpenAI client at `${url}/v1`. */
  readonly url: string
  /** Graceful stop: stops accepting, drains in-flight requests, closes upstream pools. */
  readonly stop: () => Promise<void>
}

/**
 * `config` is the YAML shape (snake_case) as a plain object; `server.port` defaults to 0 (a free
 * port) and `storage.sqlite` to `:memory:` here. Rejects with the ConfigError (or a storage
 * startup error) when the config is unusable.
 */
export const start = async (
  config: Record<string, unknown>,
  env: Record<string, string | undefined> = {}
): Promise<RunningSidecar> => {
  const server = { host: "127.0.0.1", ...(config["server"] as object | undefined) }
  // Embedded runs keep their database in memory unless told otherwise: no shared state between runs.
  const storage = { sqlite: ":memory:", ...(config["storage"] as object | undefined) }
  const parsed = parse(stringify({ ...config, server, storage }), env, "embedded config")
  if (Either.isLeft(parsed)) throw parsed.left
  // The file format wants a real port; embedded, no port given means any free one.
  const port = (config["server"] as { port?: number } | undefined)?.port ?? 0
  const decoded = new SidecarConfig({ ...parsed.right, server: new ServerConfig({ ...parsed.right.server, port }, true) })
  const layer = appLayer(env).pipe(
    Layer.provide(Layer.succeedContext(Context.make(AppConfig, decoded).pipe(Context.add(Policy, toPolicy(decoded)))))
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const address = Context.get(context, HttpAddress)
  return {
    url: address.url,
    stop: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
