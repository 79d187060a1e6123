/**
 * The demo's caller: the official `openai` client pointed at Sidecar. One call = one row: status,
 * the `x-sidecar-*` headers, and the latency measured on the client side.
 */
import OpenAI, { APIError } from "openai"
import { MODEL, timing } from "./DemoConfig.js"

export interface Row {
  readonly index: number
  readonly step: string
  readonly label: string
  readonly status: number
  /** `x-sidecar-phase`: direct | primary_wait | emergency | exhausted ("-" when absent). */
  readonly phase: string
  /** `x-sidecar-backend` ("-" when absent, as on a 503). */
  readonly backend: string
  /** `x-sidecar-attempts` (NaN when absent). */
  readonly attempts: number
  readonly latencyMs: number
  /** For an error answer: the OpenAI error `type` and the `Retry-After` header. */
  readonly errorType?: string | undefined
  readonly retryAfter?: string | undefined
}

export const makeClient = (sidecarUrl: string): OpenAI =>
  new OpenAI({ baseURL: `${sidecarUrl}/v1`, apiKey: "demo", maxRetries: 0, timeout: timing.requestTimeoutMs })

const fromHeaders = (headers: Headers | undefined) => ({
  phase: headers?.get("x-sidecar-phase") ?? "-",
  backend: headers?.get("x-sidecar-backend") ?? "-",
  attempts: Number(headers?.get("x-sidecar-attempts") ?? Number.NaN)
})

/** Sends one chat completion; an HTTP error answer becomes a row too, anything else throws. */
export const ask = async (client: OpenAI, index: number, step: string, label: string): Promise<Row> => {
  const started = performance.now()
  const elapsed = () => Math.round(performance.now() - started)
  try {
    const { response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: `Say hello (${index})` }], max_tokens: 16 })
      .withResponse()
    return { index, step, label, status: response.status, ...fromHeaders(response.headers), latencyMs: elapsed() }
  } catch (e) {
    if (!(e instanceof APIError) || e.status === undefined) throw e
    return {
      index,
      step,
      label,
      status: e.status,
      ...fromHeaders(e.headers),
      latencyMs: elapsed(),
      errorType: e.type,
      retryAfter: e.headers?.get("retry-after") ?? undefined
    }
  }
}
