/**
 * Upstream URL building (SPEC §2): backend `base_url` + the client's path and query, with the
 * `…/v1` + `/v1/…` segment not doubled. The base URL is parsed once per backend, not per request.
 */

/** A backend's `base_url`, split once into what every request to it needs. */
export interface UpstreamBase {
  /** `scheme://host[:port]`: the connection pool's key. */
  readonly origin: string
  /** The base path without a trailing slash (`""` for a bare origin), e.g. `/openai/v1`. */
  readonly path: string
  /** The base path's last segment (`"v1"`), `""` when there is none. */
  readonly lastSegment: string
  /** The base URL's own query string without `?` (`""` when none), merged before the client's. */
  readonly query: string
}

export const parseBaseUrl = (baseUrl: string): UpstreamBase => {
  const url = new URL(baseUrl)
  let path = url.pathname
  while (path.endsWith("/")) path = path.slice(0, -1)
  const slash = path.lastIndexOf("/")
  return {
    origin: url.origin,
    path,
    lastSegment: slash >= 0 ? path.slice(slash + 1) : "",
    query: url.search.length > 1 ? url.search.slice(1) : ""
  }
}

/** The first segment of a request path (`/v1/chat/completions?x` → `v1`); `""` when none. */
const firstSegmentEnd = (path: string): number => {
  let i = 1
  while (i < path.length) {
    const c = path.charCodeAt(i)
    if (c === 47 /* / */ || c === 63 /* ? */) break
    i++
  }
  return i
}

/**
 * The path (and query) to request upstream for a client `path` (which starts with `/` and may carry
 * a query string). Invariant: when the base path's last segment equals the path's first segment,
 * that segment appears once; the client's query string is kept, after the base URL's own.
 */
export const upstreamPath = (base: UpstreamBase, path: string): string => {
  let rest = path.charCodeAt(0) === 47 ? path : `/${path}`
  if (base.lastSegment !== "") {
    const end = firstSegmentEnd(rest)
    if (end - 1 === base.lastSegment.length && rest.startsWith(base.lastSegment, 1)) rest = rest.slice(end)
  }
  if (base.query !== "") {
    const q = rest.indexOf("?")
    rest = q < 0 ? `${rest}?${base.query}` : `${rest.slice(0, q)}?${base.query}&${rest.slice(q + 1)}`
  }
  const joined = base.path + rest
  return joined === "" || joined.charCodeAt(0) === 63 ? `/${joined}` : joined
}
