/**
 * What the lifecycle knows of a request: its id and canonical model. Adapters extend it with
 * what they need to forward it (method, path, headers, body); the domain passes it through untouched.
 */
export interface ProxyRequest {
  readonly id: string
  /** The canonical model: the body's `model`, or "unknown". */
  readonly model: string
}

/**
 * What the lifecycle knows of an upstream response it hands back to the caller: its status.
 * Adapters extend it with headers and a body (a byte stream, or a scripted reply in simulation).
 */
export interface UpstreamResponse {
  readonly status: number
}
