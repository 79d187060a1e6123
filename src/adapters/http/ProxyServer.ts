/**
 * The HTTP server (SPEC §2, §6): a plain node:http server whose request handler runs the lifecycle
 * in one Effect fiber per request (the measured-fastest shape, GUIDE §2), as a scoped Layer: it
 * listens when built and, when released, stops accepting, lets in-flight requests finish within
 * the grace period, then closes what is left.
 */
import { Deferred, Effect, Layer, Option, Redacted, Runtime } from "effect"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { FleetStore } from "../../domain/ports/FleetStore.js"
import type { HttpProxyRequest } from "../upstream/HttpExchange.js"
import { bearerToken, tokenMatcher } from "./ClientAuth.js"
import { HttpRoutes, ReadinessChecks } from "./HttpRoutes.js"
import { errorAnswer } from "./OpenAiError.js"
import { type LifecycleDeps, makeRunner, runExchange, writeError } from "./ProxyExchange.js"
import { canonicalModel, parseJsonObject, readBody } from "./RequestReader.js"

export interface ServerOptions {
  readonly host: string
  readonly port: number
  readonly maxBodyBytes: number
  readonly shutdownGraceMs: number
  readonly proxyKeys: ReadonlyArray<Redacted.Redacted<string>>
  readonly exhaustedShouldRetry: boolean
}

/** Where the server listens, once it does (port 0 picks a free port). */
export interface BoundAddress {
  readonly host: string
  readonly port: number
  readonly url: string
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  res.end(text)
}

export const make = (options: ServerOptions) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<LifecycleDeps>()
    const runner = makeRunner(runtime)
    const fleet = yield* FleetStore
    const routes = [...Option.getOrElse(yield* Effect.serviceOption(HttpRoutes), () => [])]
      .sort((a, b) => b.prefix.length - a.prefix.length)
    const checks = Option.getOrElse(yield* Effect.serviceOption(ReadinessChecks), () => [])
    const notReady = Effect.gen(function*() {
      const reasons: Array<string> = []
      if ((yield* fleet.view).every((v) => !v.backend.enabled)) reasons.push("no enabled backend")
      for (const check of checks) Option.map(yield* check, (r) => reasons.push(r))
      return reasons
    })
    const runSync = Runtime.runSync(runtime)
    const clientKeyOk = tokenMatcher(options.proxyKeys.map(Redacted.value))
    const authRequired = options.proxyKeys.length > 0
    let inFlight = 0
    const drained = yield* Deferred.make<void>()
    let closing = false
    const done = () => {
      inFlight--
      if (closing && inFlight === 0) Deferred.unsafeDone(drained, Effect.void)
    }

    const proxy = (req: IncomingMessage, res: ServerResponse, path: string) => {
      const id = typeof req.headers["x-request-id"] === "string" && req.headers["x-request-id"] !== ""
        ? req.headers["x-request-id"]
        : randomUUID()
      if (authRequired && !clientKeyOk(bearerToken(req.headers))) {
        req.resume()
        return writeError(res, errorAnswer(401, "Invalid or missing API key for this Sidecar", "invalid_request_error", "invalid_api_key"), { "x-request-id": id })
      }
      const startedAt = Date.now()
      inFlight++
      readBody(req, options.maxBodyBytes, (r) => {
        if (r._tag === "Aborted") return done()
        if (r._tag === "TooLarge") {
          res.setHeader("connection", "close")
          writeError(res, errorAnswer(413, `Request body larger than ${options.maxBodyBytes} bytes`, "invalid_request_error", "request_too_large"), { "x-request-id": id })
          return done()
        }
        const parsed = parseJsonObject(r.body)
        const request: HttpProxyRequest = {
          id,
          model: canonicalModel(parsed),
          method: req.method ?? "GET",
          path,
          headers: req.headers,
          body: r.body,
          json: parsed,
          stream: parsed?.["stream"] === true
        }
        runExchange(runner, { exhaustedShouldRetry: options.exhaustedShouldRetry }, request, req, res, startedAt, done)
      })
    }

    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? "/"
      if (path.startsWith("/v1/")) return proxy(req, res, path)
      for (const route of routes) if (path.startsWith(route.prefix)) return route.handle(req, res)
      req.resume()
      if (path === "/healthz") return json(res, 200, { status: "ok" })
      if (path === "/readyz") {
        const reasons = runSync(notReady)
        return reasons.length === 0
          ? json(res, 200, { status: "ready" })
          : json(res, 503, { status: "not_ready", reason: reasons.join("; ") })
      }
      writeError(res, errorAnswer(404, `No route for ${req.method ?? "GET"} ${path.split("?")[0]}`, "invalid_request_error", "not_found"))
    }

    const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, handle)
    const address = yield* Effect.async<BoundAddress, Error>((resume) => {
      server.once("error", (e) => resume(Effect.fail(e)))
      // A deep accept queue: agents open hundreds of connections at once (Node's default 511 overflowed at 1,000).
      server.listen({ port: options.port, host: options.host, backlog: 4096 }, () => {
        const a = server.address() as AddressInfo
        resume(Effect.succeed({ host: a.address, port: a.port, url: `http://${a.address.includes(":") ? `[${a.address}]` : a.address}:${a.port}` }))
      })
    })
    yield* Effect.logInfo("listening").pipe(Effect.annotateLogs({ url: address.url }))

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closing = true
        server.close()
        server.closeIdleConnections()
        if (inFlight > 0) {
          yield* Effect.logInfo("draining").pipe(Effect.annotateLogs({ in_flight: inFlight }))
          // Finalizers are uninterruptible: the wait must opt back in for its timeout to fire.
          yield* Deferred.await(drained).pipe(Effect.interruptible, Effect.timeoutOption(options.shutdownGraceMs))
        }
        server.closeAllConnections()
        yield* Effect.logInfo("stopped").pipe(Effect.annotateLogs({ abandoned_requests: inFlight }))
      })
    )
    return address
  })

export class HttpAddress extends Effect.Tag("sidecar/HttpAddress")<HttpAddress, BoundAddress>() {}

/** The server as a scoped Layer providing the address it listens on. */
export const layer = (options: ServerOptions) => Layer.scoped(HttpAddress, make(options))
