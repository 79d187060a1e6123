/**
 * Extra HTTP routes mounted beside the proxy (the admin API, `/metrics`), and extra readiness
 * checks for `/readyz`: each adapter contributes its own, the server dispatches by path prefix.
 */
import { Context, type Effect, type Option } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"

export interface HttpRoute {
  /** Requests whose path starts with this prefix go to `handle` (longest prefix first). */
  readonly prefix: string
  /** Owns the request from here: reads its body if it needs one, and answers. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void
}

export class HttpRoutes extends Context.Tag("sidecar/HttpRoutes")<HttpRoutes, ReadonlyArray<HttpRoute>>() {}

/** A readiness condition: none when ready, else the reason, shown in `/readyz`'s 503. */
export type ReadinessCheck = Effect.Effect<Option.Option<string>>

export class ReadinessChecks extends Context.Tag("sidecar/ReadinessChecks")<
  ReadinessChecks,
  ReadonlyArray<ReadinessCheck>
>() {}
