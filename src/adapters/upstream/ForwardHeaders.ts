/**
 * Which headers cross the proxy (SPEC §2): hop-by-hop headers, `Host` and `Content-Length` never
 * do, in either direction; the client's `Authorization` is replaced by the backend's key.
 */
import { Redacted } from "effect"
import type { HeaderMap } from "./HttpExchange.js"

/**
 * Names never forwarded in either direction: the connection-level (hop-by-hop) headers of
 * RFC 9110 §7.6.1, `host` (set from the upstream URL), `content-length` (recomputed) and `expect`
 * (undici refuses it), plus any `proxy-*`. Names are lower-case.
 */
export const isHopByHop = (name: string): boolean => {
  switch (name) {
    case "host":
    case "content-length":
    case "connection":
    case "keep-alive":
    case "transfer-encoding":
    case "te":
    case "trailer":
    case "upgrade":
    case "expect":
      return true
    default:
      return name.startsWith("proxy-")
  }
}

/** Extra hop-by-hop names a `Connection` header lists (RFC 9110 §7.6.1), beyond close/keep-alive. */
const connectionTokens = (value: string | ReadonlyArray<string> | undefined): ReadonlySet<string> | undefined => {
  if (value === undefined) return undefined
  const joined = typeof value === "string" ? value : value.join(",")
  if (joined === "keep-alive" || joined === "close") return undefined
  let tokens: Set<string> | undefined
  for (const raw of joined.split(",")) {
    const t = raw.trim().toLowerCase()
    if (t !== "" && t !== "close" && t !== "keep-alive") (tokens ??= new Set()).add(t)
  }
  return tokens
}

/**
 * The headers to send upstream, as undici's flat `[name, value, …]` list. Invariants: no
 * hop-by-hop header; the client's `authorization` never leaves, `Bearer <key>` takes its place
 * when the backend has a key; nothing is added except that a client `accept-encoding` becomes
 * `identity` (the proxy reads SSE events and usage out of the body, so it must not be compressed).
 */
export const upstreamRequestHeaders = (
  headers: HeaderMap,
  apiKey: Redacted.Redacted<string> | undefined
): Array<string> => {
  const out: Array<string> = []
  const listed = connectionTokens(headers["connection"])
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || name === "authorization" || isHopByHop(name)) continue
    if (listed !== undefined && listed.has(name)) continue
    if (name === "accept-encoding") {
      out.push(name, "identity")
    } else if (typeof value === "string") {
      out.push(name, value)
    } else {
      for (const v of value) out.push(name, v)
    }
  }
  if (apiKey !== undefined) out.push("authorization", `Bearer ${Redacted.value(apiKey)}`)
  return out
}

/** Response header values as undici parses them (lower-case names). */
export type ParsedHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/**
 * The upstream response's headers to hand the client: lower-case names, hop-by-hop headers and
 * `content-length` removed (the body may be rewritten; the server re-frames it).
 */
export const clientResponseHeaders = (headers: ParsedHeaders): Record<string, string | ReadonlyArray<string>> => {
  const out: Record<string, string | ReadonlyArray<string>> = {}
  const listed = connectionTokens(headers["connection"])
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || isHopByHop(name)) continue
    if (listed !== undefined && listed.has(name)) continue
    out[name] = value
  }
  return out
}

/** The first value of a header. */
export const headerValue = (headers: ParsedHeaders, name: string): string | undefined => {
  const v = headers[name]
  return typeof v === "string" ? v : v?.[0]
}
