/**
 * The HTTP shapes of the domain's opaque request and response: what the HTTP server hands the
 * lifecycle, and what the undici upstream adapter hands back through it.
 */
import type { Readable } from "node:stream"
import type { StreamEnd } from "../../domain/Attempt.js"
import type { ProxyRequest, UpstreamResponse } from "../../domain/ProxyRequest.js"

export type HeaderMap = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

export interface HttpProxyRequest extends ProxyRequest {
  readonly method: string
  /** Path and query string as received, e.g. `/v1/chat/completions?x=1`. */
  readonly path: string
  /** The client's headers, lower-case names, as Node delivers them. */
  readonly headers: HeaderMap
  /** The body as received (empty for GET). */
  readonly body: Buffer
  /** The body parsed, when it is a JSON object. */
  readonly json: Record<string, unknown> | undefined
  /** The JSON body asks for a streamed (SSE) response. */
  readonly stream: boolean
}

/** What the data plane learned once the body was delivered (or broke). */
export interface BodyReport {
  readonly promptTokens: number | undefined
  readonly completionTokens: number | undefined
  /** How the body ended: completely, or broken after the commit point. */
  readonly end: StreamEnd
}

export interface HttpUpstreamResponse extends UpstreamResponse {
  readonly status: number
  /** Headers to send to the client: hop-by-hop headers and content-length already removed. */
  readonly headers: Record<string, string | ReadonlyArray<string>>
  /** The bytes for the client. Destroying it aborts the upstream request. */
  readonly body: Readable
  /** Settles once the body has been fully delivered, or broken; never rejects. */
  readonly finished: Promise<BodyReport>
}

export const isHttpProxyRequest = (r: ProxyRequest): r is HttpProxyRequest =>
  "method" in r && "path" in r && "body" in r
