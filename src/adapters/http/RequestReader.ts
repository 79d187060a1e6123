/**
 * Reads a client request body under `server.max_body_bytes`, and finds the canonical model in it.
 * Plain Node: it runs before any Effect work, once per request.
 */
import type { IncomingMessage } from "node:http"

export type BodyResult =
  | { readonly _tag: "Body"; readonly body: Buffer }
  | { readonly _tag: "TooLarge" }
  | { readonly _tag: "Aborted" }

/** Collects the body; stops reading (and reports TooLarge) past `maxBytes`. */
export const readBody = (req: IncomingMessage, maxBytes: number, done: (r: BodyResult) => void): void => {
  const declared = Number(req.headers["content-length"])
  if (Number.isFinite(declared) && declared > maxBytes) {
    done({ _tag: "TooLarge" })
    return
  }
  const chunks: Array<Buffer> = []
  let size = 0
  let finished = false
  const finish = (r: BodyResult) => {
    if (finished) return
    finished = true
    done(r)
  }
  req.on("data", (chunk: Buffer) => {
    size += chunk.length
    if (size > maxBytes) {
      req.removeAllListeners("data")
      req.pause()
      finish({ _tag: "TooLarge" })
      return
    }
    chunks.push(chunk)
  })
  req.on("end", () => finish({ _tag: "Body", body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) }))
  req.on("aborted", () => finish({ _tag: "Aborted" }))
  req.on("error", () => finish({ _tag: "Aborted" }))
}

/** The body as a JSON object, when it is one (checked cheaply before parsing). */
export const parseJsonObject = (body: Buffer): Record<string, unknown> | undefined => {
  if (body.length === 0) return undefined
  let i = 0
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++
  if (body[i] !== 0x7b) return undefined // "{"
  try {
    const v: unknown = JSON.parse(body.toString("utf8"))
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** SPEC §1: the canonical model is the body's `model`, or "unknown". */
export const canonicalModel = (json: Record<string, unknown> | undefined): string =>
  typeof json?.["model"] === "string" && json["model"] !== "" ? json["model"] : "unknown"
