/**
 * The admin API (SPEC §6) as an HttpRoute under `/admin/`: bearer-token check (constant time; no
 * token configured → every path is 404), dispatch by method and path, JSON in and out, every error
 * in the OpenAI shape. Bodies and the Authorization header are never logged nor echoed.
 */
import { Cause, Effect, Layer, Redacted, Runtime } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { BackendRegistry } from "../../domain/ports/BackendRegistry.js"
import { FleetStore } from "../../domain/ports/FleetStore.js"
import { UsageReports } from "../../domain/ports/UsageReports.js"
import { AppConfig } from "../config/ConfigFile.js"
import { createBackend, getBackend, listBackends, patchBackend, removeBackend } from "./AdminBackends.js"
import { AdminFailure } from "./AdminInput.js"
import { usageReport } from "./AdminUsage.js"
import { bearerToken, tokenMatcher } from "./ClientAuth.js"
import { type HttpRoute, HttpRoutes } from "./HttpRoutes.js"
import { type ErrorAnswer, errorAnswer } from "./OpenAiError.js"
import { parseJsonObject, readBody } from "./RequestReader.js"

/** Admin bodies are small; anything bigger is refused before it is read. */
export const ADMIN_MAX_BODY_BYTES = 1024 * 1024

export type AdminDeps = AppConfig | BackendRegistry | UsageReports | FleetStore

/** A successful answer: a status and a JSON body (none for 204). */
interface Ok {
  readonly status: number
  readonly body?: unknown
}

/** What a matched route does: with the parsed body when `withBody`. */
interface Handler {
  readonly withBody: boolean
  readonly run: (body: unknown) => Effect.Effect<Ok, AdminFailure, AdminDeps>
}

const ok = (status: number) => (body?: unknown): Ok => (body === undefined ? { status } : { status, body })

const methodNotAllowed = (method: string, path: string, allow: ReadonlyArray<string>) =>
  new AdminFailure({ status: 405, message: `Method ${method} not allowed on ${path} (allowed: ${allow.join(", ")})`, code: "method_not_allowed" })

const byMethod = (method: string, path: string, handlers: Record<string, Handler>): Handler | AdminFailure =>
  handlers[method] ?? methodNotAllowed(method, path, Object.keys(handlers))

const get = (run: () => Effect.Effect<Ok, AdminFailure, AdminDeps>): Handler => ({ withBody: false, run })

const backendPath = /^\/admin\/backends\/([^/]+)$/

/** The handler for a method and path (query string removed), or the failure to answer. */
const route = (method: string, path: string, query: URLSearchParams): Handler | AdminFailure => {
  if (path === "/admin/backends") {
    return byMethod(method, path, {
      GET: get(() => Effect.map(listBackends, ok(200))),
      POST: { withBody: true, run: (body) => Effect.map(createBackend(body), ok(201)) }
    })
  }
  const m = backendPath.exec(path)
  if (m !== null) {
    let id: string
    try {
      id = decodeURIComponent(m[1]!)
    } catch {
      return new AdminFailure({ status: 400, message: "id: malformed percent-encoding in the path", code: "invalid_id" })
    }
    return byMethod(method, path, {
      GET: get(() => Effect.map(getBackend(id), ok(200))),
      PATCH: { withBody: true, run: (body) => Effect.map(patchBackend(id, body), ok(200)) },
      DELETE: get(() => Effect.as(removeBackend(id), { status: 204 }))
    })
  }
  if (path === "/admin/usage") {
    return byMethod(method, path, { GET: get(() => Effect.map(usageReport(query), ok(200))) })
  }
  return new AdminFailure({ status: 404, message: `No admin route for ${method} ${path}`, code: "not_found" })
}

const send = (res: ServerResponse, status: number, headers: Record<string, string>, body?: string) => {
  if (res.headersSent || res.destroyed) return
  const length = body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) }
  res.writeHead(status, { "cache-control": "no-store", ...headers, ...length })
  res.end(body)
}

const sendError = (res: ServerResponse, e: ErrorAnswer) => send(res, e.status, e.headers, e.body)

const failureAnswer = (f: AdminFailure): ErrorAnswer =>
  errorAnswer(f.status, f.message, f.status >= 500 ? "server_error" : "invalid_request_error", f.code)

/** The admin route, running its Effects on the runtime captured here. */
export const makeAdminRoute: Effect.Effect<HttpRoute, never, AdminDeps> = Effect.gen(function*() {
  const config = yield* AppConfig
  const runtime = yield* Effect.runtime<AdminDeps>()
  const runFork = Runtime.runFork(runtime)
  const token = config.security.adminToken
  const tokenOk = token === undefined ? undefined : tokenMatcher([Redacted.value(token)])

  const execute = (res: ServerResponse, handler: Handler, body: unknown) => {
    const fiber = runFork(handler.run(body).pipe(
      Effect.map((answer) => () =>
        answer.body === undefined
          ? send(res, answer.status, {})
          : send(res, answer.status, { "content-type": "application/json" }, JSON.stringify(answer.body))),
      Effect.catchTag("AdminFailure", (f) => Effect.succeed(() => sendError(res, failureAnswer(f)))),
      Effect.catchAllCause((cause) =>
        Effect.as(
          Effect.logError("admin_error", Cause.squash(cause)),
          () => sendError(res, errorAnswer(500, "Internal error in the admin API", "server_error", "internal_error"))
        )
      )
    ))
    fiber.addObserver((exit) => {
      if (exit._tag === "Success") exit.value()
      else sendError(res, errorAnswer(500, "Internal error in the admin API", "server_error", "internal_error"))
    })
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? "GET"
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q < 0 ? url : url.slice(0, q)
    if (tokenOk === undefined) {
      req.resume()
      return sendError(res, errorAnswer(404, `No route for ${method} ${path} (the admin API is disabled: no security.admin_token)`, "invalid_request_error", "not_found"))
    }
    if (!tokenOk(bearerToken(req.headers))) {
      req.resume()
      return sendError(res, errorAnswer(401, "Invalid or missing admin token", "invalid_request_error", "invalid_admin_token", { "www-authenticate": "Bearer" }))
    }
    const handler = route(method, path, new URLSearchParams(q < 0 ? "" : url.slice(q + 1)))
    if (handler instanceof AdminFailure) {
      req.resume()
      return sendError(res, failureAnswer(handler))
    }
    if (!handler.withBody) {
      req.resume()
      return execute(res, handler, undefined)
    }
    readBody(req, ADMIN_MAX_BODY_BYTES, (r) => {
      if (r._tag === "Aborted") return
      if (r._tag === "TooLarge") {
        res.setHeader("connection", "close")
        return sendError(res, errorAnswer(413, `Request body larger than ${ADMIN_MAX_BODY_BYTES} bytes`, "invalid_request_error", "request_too_large"))
      }
      execute(res, handler, parseJsonObject(r.body))
    })
  }

  return { prefix: "/admin/", handle }
})

/** HttpRoutes holding only the admin route; merge with other routes where several are mounted. */
export const layer: Layer.Layer<HttpRoutes, never, AdminDeps> = Layer.effect(
  HttpRoutes,
  Effect.map(makeAdminRoute, (r) => [r])
)
