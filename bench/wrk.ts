/**
 * Saturation with wrk (when installed): one wrk thread, N connections, POSTing the bench's JSON
 * body from a generated Lua script; parses the request count and errors from its report.
 */
import { execFileSync, spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { track } from "./children.js"
import { CLIENT_HEADERS, type ClosedResult, JSON_BODY, PATH } from "./protocol.js"

/** The wrk binary's path, or undefined when it is not installed. */
export const findWrk = (): string | undefined => {
  try {
    const p = execFileSync("sh", ["-c", "command -v wrk"], { encoding: "utf8", timeout: 5_000 }).trim()
    return p === "" ? undefined : p
  } catch {
    return undefined
  }
}

const luaString = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, "\\\"")}"`

/** Writes the Lua script that makes wrk send the bench's POST. */
export const writeWrkScript = (path: string): void => {
  const lines = [
    "wrk.method = \"POST\"",
    `wrk.body = ${luaString(JSON_BODY)}`,
    ...Object.entries(CLIENT_HEADERS).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`)
  ]
  writeFileSync(path, lines.join("\n") + "\n")
}

const toMs = (value: string, unit: string) => Number(value) * (unit === "m" ? 60_000 : unit === "ms" ? 1 : unit === "us" ? 0.001 : 1000)

/** Parses wrk's report: completed requests, elapsed time, non-2xx responses and socket errors. */
export const parseWrk = (out: string): ClosedResult & { readonly socketErrors: number; readonly non2xx: number } => {
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(out)
  if (done === null) throw new Error(`cannot parse wrk output:\n${out}`)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const socketErrors = sock === null ? 0 : sock.slice(1).reduce((a, b) => a + Number(b), 0)
  const total = Number(done[1])
  return {
    requests: total - non2xx,
    errors: non2xx + socketErrors,
    elapsedMs: toMs(done[2] ?? "0", done[3] ?? "s"),
    socketErrors,
    non2xx
  }
}

/** Runs `wrk -t1 -c<connections> -d<seconds>` against `origin`, bounded in time. */
export const runWrk = (wrk: string, script: string, origin: string, connections: number, durationMs: number): Promise<ClosedResult> =>
  new Promise((resolve, reject) => {
    const seconds = Math.max(1, Math.round(durationMs / 1000))
    const child = track(spawn(wrk, ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", "-s", script, `${origin}${PATH}`], {
      stdio: ["ignore", "pipe", "pipe"]
    }))
    let out = ""
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), durationMs + 15_000)
    // "close", not "exit": exit can come before the last of stdout has been read.
    child.once("close", (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`wrk exited with ${code}:\n${out}`))
      try {
        resolve(parseWrk(out))
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)))
      }
    })
  })
