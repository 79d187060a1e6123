/**
 * The floor for any Node proxy (own process): node:http server + one keep-alive undici Agent +
 * `stream.pipeline` of the upstream body, forwarding method, path, headers (key swapped) and body.
 */
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"
import { pipeline } from "node:stream"
import { Agent } from "undici"
import { type ChildMessage, exitWithParent } from "./protocol.js"

exitWithParent()

const upstream = process.argv[2] ?? "http://127.0.0.1:1"
const apiKey = process.argv[3] ?? "bench-key"
const agent = new Agent({ keepAliveTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 })

const HOP = new Set(["host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "expect"])

const requestHeaders = (h: IncomingHttpHeaders): Record<string, string | Array<string>> => {
  const out: Record<string, string | Array<string>> = {}
  for (const name in h) {
    const v = h[name]
    if (v !== undefined && !HOP.has(name) && name !== "authorization") out[name] = v
  }
  out["authorization"] = `Bearer ${apiKey}`
  return out
}

const responseHeaders = (h: Record<string, string | Array<string> | undefined>): OutgoingHttpHeaders => {
  const out: OutgoingHttpHeaders = {}
  for (const name in h) {
    const v = h[name]
    if (v !== undefined && !HOP.has(name)) out[name] = v
  }
  return out
}

const ignore = () => {}

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const chunks: Array<Buffer> = []
  req.on("error", ignore)
  req.on("data", (c: Buffer) => chunks.push(c))
  req.on("end", () => {
    const body = chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks)
    agent.request({
      origin: upstream,
      path: req.url ?? "/",
      method: (req.method ?? "GET") as "POST",
      headers: requestHeaders(req.headers),
      body: body.length > 0 ? body : null
    }).then(
      (up) => {
        if (res.destroyed) {
          up.body.on("error", ignore) // undici's body errors when destroyed before its end
          return up.body.destroy()
        }
        res.writeHead(up.statusCode, responseHeaders(up.headers))
        pipeline(up.body, res, ignore)
      },
      () => {
        if (res.headersSent) return res.destroy()
        res.writeHead(502, { "content-type": "application/json" })
        res.end("{\"error\":{\"message\":\"upstream failed\"}}")
      }
    )
  })
})
server.listen(0, "127.0.0.1", () => {
  const message: ChildMessage = { type: "ready", port: (server.address() as AddressInfo).port }
  process.send?.(message)
})
