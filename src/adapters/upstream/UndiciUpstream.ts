/**
 * The `Upstream` port over undici: a scoped layer owning the keep-alive pools; `send` runs one
 * attempt up to its commit point inside one `Effect.async`, whose interruption aborts the request.
 */
import { Effect, Layer, type Scope } from "effect"
import { Observation } from "../../domain/FailureClass.js"
import { type AttemptReply, type AttemptSpec, Upstream, type UpstreamShape } from "../../domain/ports/Upstream.js"
import { forBackend, isContinuable, isContinuation } from "./ContinuationRequest.js"
import { type HttpProxyRequest, isHttpProxyRequest } from "./HttpExchange.js"
import { upstreamRequestHeaders } from "./ForwardHeaders.js"
import { upstreamBody } from "./RequestBody.js"
import { UpstreamAttempt } from "./UpstreamAttempt.js"
import { type PoolOptions, UpstreamPools } from "./UpstreamPools.js"
import { upstreamPath } from "./UpstreamUrl.js"

export type { PoolOptions } from "./UpstreamPools.js"

const unsendable: AttemptReply = { observation: Observation.ConnectionFailed({ reason: "other" }) }

/** Dispatches the attempt; returns it (for cancellation), or undefined when it could not even start. */
const start = (
  pools: UpstreamPools,
  spec: AttemptSpec,
  request: HttpProxyRequest,
  resume: (effect: Effect.Effect<AttemptReply>) => void
): UpstreamAttempt | undefined => {
  let attempt: UpstreamAttempt | undefined
  try {
    const backend = spec.backend
    const continuation = isContinuation(request) ? request : undefined
    // A prefill goes only to a backend that declared it can continue one (the domain picks only
    // those; this keeps it true whatever asks).
    if (continuation !== undefined && !backend.prefillContinuation) {
      resume(Effect.succeed(unsendable))
      return undefined
    }
    const sent = continuation === undefined ? request : forBackend(continuation, backend)
    const body = upstreamBody(sent, spec.upstreamModel)
    const track = spec.trackAnswer && continuation === undefined && isContinuable(request)
    attempt = new UpstreamAttempt(backend, body.dropUsageChunk, request.method === "HEAD", track, continuation?.continuing, (reply) =>
      resume(Effect.succeed(reply)))
    const target = pools.target(backend.baseUrl)
    target.pool.dispatch({
      path: upstreamPath(target.base, request.path),
      method: request.method,
      headers: upstreamRequestHeaders(request.headers, backend.apiKey),
      body: body.bytes.length > 0 ? body.bytes : null,
      headersTimeout: 0,
      bodyTimeout: 0
    }, attempt)
    return attempt
  } catch (err) {
    // Only a bug or a closed layer gets here (undici reports its own errors through the handler).
    if (attempt === undefined) resume(Effect.succeed(unsendable))
    else attempt.onResponseError(undefined, err instanceof Error ? err : new Error("dispatch failed"))
    return attempt
  }
}

/**
 * `send` never fails and never retries. It completes at the attempt's commit point (SPEC §1 step 3)
 * or with the failure observed first; interrupting it aborts the upstream request at once (the
 * canceler destroys the socket, or marks the request so it is aborted the moment it gets one).
 */
const send = (pools: UpstreamPools, spec: AttemptSpec): Effect.Effect<AttemptReply> => {
  const request = spec.request
  if (!isHttpProxyRequest(request)) return Effect.succeed(unsendable)
  return Effect.async<AttemptReply>((resume) => {
    const attempt = start(pools, spec, request, resume)
    return attempt === undefined ? undefined : Effect.sync(() => attempt.cancel())
  })
}

/** Builds the port in a scope: the pools are closed (in-flight requests get a grace period) when it closes. */
export const make = (options: PoolOptions = {}): Effect.Effect<UpstreamShape, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => new UpstreamPools(options)),
      (pools) => Effect.promise(() => pools.close())
    ),
    (pools) => Upstream.of({ send: (spec) => send(pools, spec) })
  )

/** The production `Upstream`: undici pools, one per backend origin, kept alive. */
export const layer: Layer.Layer<Upstream> = Layer.scoped(Upstream, make())

/** The same with explicit pool options. */
export const layerWith = (options: PoolOptions): Layer.Layer<Upstream> => Layer.scoped(Upstream, make(options))
