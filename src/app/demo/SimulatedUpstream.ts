/**
 * A tiny simulated OpenAI-compatible provider for the demo: one node:http server per API key on
 * 127.0.0.1, whose answer (healthy, 429 with Retry-After, or 503) the demo script switches live.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/** How the provider answers chat completions. `retryAfterS` is sent as `Retry-After` (whole seconds). */
export type Behaviour =
  | { readonly status: 200 }
  | { readonly status: 429; readonly retryAfterS: number }
  | { readonly status: 503 }

export const healthy: Behaviour = { status: 200 }
export const rateLimited = (retryAfterS: number): Behaviour => ({ status: 429, retryAfterS })

export interface SimulatedUpstream {
  /** The backend id this provider stands for (e.g. `primary-a`). */
  readonly name: string
  /** The only key it accepts (`Authorization: Bearer <key>`); anything else gets a 401. */
  readonly apiKey: string
  /** `http://127.0.0.1:<port>/v1` */
  readonly baseUrl: string
  /** Answer every following request this way. */
  readonly set: (behaviour: Behaviour) => void
  /** Answer only the next request this way, then go back to the behaviour set last. */
  readonly once: (behaviour: Behaviour) => void
  /** The statuses answered so far, in order. */
  readonly answered: () => ReadonlyArray<number>
  readonly close: () => Promise<void>
}

const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers })
  res.end(text)
}

const modelOf = (body: string): string => {
  try {
    const parsed: unknown = JSON.parse(body)
    const model = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>)["model"] : undefined
    return typeof model === "string" ? model : "unknown"
  } catch {
    return "unknown"
  }
}

export const startUpstream = async (name: string): Promise<SimulatedUpstream> => {
  const apiKey = `demo-key-${name}`
  let current: Behaviour = healthy
  let next: Behaviour | undefined
  const answered: Array<number> = []
  let served = 0

  const answer = (req: IncomingMessage, res: ServerResponse, body: string) => {
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      answered.push(401)
      return sendJson(res, 401, { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } })
    }
    const behaviour = next ?? current
    next = undefined
    answered.push(behaviour.status)
    switch (behaviour.status) {
      case 429:
        return sendJson(
          res,
          429,
          { error: { message: `Rate limit reached for ${name} (simulated)`, type: "requests", code: "rate_limit_exceeded" } },
          { "retry-after": String(behaviour.retryAfterS) }
        )
      case 503:
        return sendJson(res, 503, { error: { message: "The server is overloaded (simulated)", type: "server_error", code: null } })
      case 200:
        served++
        return sendJson(res, 200, {
          id: `chatcmpl-${name}-${served}`,
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model: modelOf(body),
          choices: [{ index: 0, message: { role: "assistant", content: `Hello from ${name}!` }, finish_reason: "stop" }],
          usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 }
        })
    }
  }

  const server = createServer((req, res) => {
    const parts: Array<Buffer> = []
    req.on("data", (c: Buffer) => parts.push(c))
    req.on("end", () => answer(req, res, Buffer.concat(parts).toString("utf8")))
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    name,
    apiKey,
    baseUrl: `http://127.0.0.1:${port}/v1`,
    set: (behaviour) => {
      current = behaviour
    },
    once: (behaviour) => {
      next = behaviour
    },
    answered: () => answered,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
