/**
 * What the CLI's commands need, in the admin API's JSON shapes, and its HTTP implementation
 * (`--url`): every non-2xx answer becomes a CliError carrying the server's message.
 */
import type { BackendJson } from "../../adapters/http/AdminBackends.js"
import type { UsageJson } from "../../adapters/http/AdminUsage.js"
import { CliError } from "./Args.js"

export interface UsageParams {
  readonly since?: string
  readonly until?: string
  readonly group_by?: string
}

export interface AdminClient {
  readonly listBackends: () => Promise<ReadonlyArray<BackendJson>>
  /** `body` uses the YAML backend field names. */
  readonly createBackend: (body: Record<string, unknown>) => Promise<BackendJson>
  readonly patchBackend: (id: string, patch: Record<string, unknown>) => Promise<BackendJson>
  readonly removeBackend: (id: string) => Promise<void>
  readonly usage: (params: UsageParams) => Promise<UsageJson>
  /** Releases what the client holds (storage in direct mode). */
  readonly close: () => Promise<void>
}

const REQUEST_TIMEOUT_MS = 30_000

/** The admin API's error message, or the status when the body is not the OpenAI error shape. */
const errorMessage = (status: number, text: string): string => {
  try {
    const parsed: unknown = JSON.parse(text)
    const message = (parsed as { error?: { message?: unknown } }).error?.message
    if (typeof message === "string") return message
  } catch {
    // not JSON: fall through
  }
  return `HTTP ${status}`
}

const describeNetworkError = (e: unknown): string => {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause
  if (typeof cause?.code === "string") return cause.code
  if (e instanceof Error && e.name === "TimeoutError") return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`
  return typeof cause?.message === "string" ? cause.message : e instanceof Error ? e.message : String(e)
}

/** Checks `--url`: an http(s) URL; the trailing slash is dropped. */
export const adminBaseUrl = (url: string): string => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new CliError(`--url: expected an http(s) URL like http://127.0.0.1:8080, got ${JSON.stringify(url)}`, 2)
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new CliError(`--url: expected an http(s) URL, got ${JSON.stringify(url)}`, 2)
  }
  return parsed.href.replace(/\/+$/, "")
}

/** The admin API of a running Sidecar at `baseUrl` (e.g. `http://127.0.0.1:8080`). */
export const httpClient = (baseUrl: string, token: string | undefined): AdminClient => {
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const headers: Record<string, string> = { accept: "application/json" }
    if (token !== undefined) headers["authorization"] = `Bearer ${token}`
    const init: RequestInit = { method, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }
    if (body !== undefined) {
      headers["content-type"] = "application/json"
      init.body = JSON.stringify(body)
    }
    let res: Response
    let text: string
    try {
      res = await fetch(`${baseUrl}${path}`, init)
      text = await res.text()
    } catch (e) {
      throw new CliError(`cannot reach Sidecar at ${baseUrl} (${describeNetworkError(e)})`)
    }
    if (res.status === 401) {
      throw new CliError(`${errorMessage(res.status, text)}: pass the admin token with --token or SIDECAR_ADMIN_TOKEN`)
    }
    if (!res.ok) throw new CliError(errorMessage(res.status, text))
    if (text === "") return undefined
    try {
      return JSON.parse(text)
    } catch {
      throw new CliError(`unexpected answer from ${baseUrl}${path}: not JSON (is --url a Sidecar?)`)
    }
  }
  const backendPath = (id: string) => `/admin/backends/${encodeURIComponent(id)}`
  return {
    listBackends: async () => ((await call("GET", "/admin/backends")) as { backends: ReadonlyArray<BackendJson> }).backends,
    createBackend: async (body) => (await call("POST", "/admin/backends", body)) as BackendJson,
    patchBackend: async (id, patch) => (await call("PATCH", backendPath(id), patch)) as BackendJson,
    removeBackend: async (id) => void (await call("DELETE", backendPath(id))),
    usage: async (params) => {
      const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined)).toString()
      return (await call("GET", `/admin/usage${query === "" ? "" : `?${query}`}`)) as UsageJson
    },
    close: async () => {}
  }
}
