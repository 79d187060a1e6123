/**
 * Child processes of the bench: forking the TypeScript helpers (readiness over IPC), spawning
 * Sidecar from its real entrypoint, asking the load generator, and killing every one of them.
 */
import { type ChildProcess, fork, spawn } from "node:child_process"
import { openSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { createServer } from "node:net"
import { request } from "undici"
import type { ChildMessage, LoadCommand, LoadResult } from "./protocol.js"

const children = new Set<ChildProcess>()

const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null

export const track = (c: ChildProcess): ChildProcess => {
  children.add(c)
  c.once("exit", () => children.delete(c))
  return c
}

/** Forks `bench/<file>` under the tsx loader (plus `nodeArgs`) and waits for its `ready` message (its port). */
export const forkTs = (
  root: string,
  file: string,
  args: ReadonlyArray<string>,
  nodeArgs: ReadonlyArray<string> = []
): Promise<{ child: ChildProcess; port: number }> => {
  const child = track(fork(`${root}/bench/${file}`, [...args], {
    cwd: root,
    execArgv: ["--import", "tsx", ...nodeArgs],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  }))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start within 30 s`)), 30_000)
    child.once("exit", (code) => reject(new Error(`${file} exited early (${code})`)))
    child.on("message", (m: ChildMessage) => {
      if (m.type !== "ready") return
      clearTimeout(timer)
      resolve({ child, port: m.port })
    })
  })
}

/** A free TCP port on 127.0.0.1 (for Sidecar, which takes its port from SIDECAR_PORT). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const a = s.address()
      const port = typeof a === "object" && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `url` until it answers 200, up to `timeoutMs`. */
export const waitHealthy = async (url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && alive(child)) {
    try {
      const r = await request(url, { headersTimeout: 1_000, bodyTimeout: 1_000 })
      await r.body.dump()
      if (r.statusCode === 200) return true
    } catch { /* not yet */ }
    await sleep(200)
  }
  return false
}

/** The node flags of package.json's `start` script (`node <flags> dist/main.js`). */
export const startFlags = (root: string): Array<string> => {
  const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts
  const m = /node ((?:--\S+ )*)dist\/main\.js/.exec(scripts["start"] ?? "")
  return m?.[1]?.trim().split(/\s+/).filter((f) => f !== "") ?? []
}

/**
 * Starts Sidecar: the compiled .js with the node flags `npm start` uses (read from package.json),
 * or `node --import tsx <entry>` for a .ts; stdout+stderr to `logFile`.
 */
export const spawnSidecar = (
  root: string,
  entry: string,
  configPath: string,
  port: number,
  logFile: string,
  extraNodeArgs: ReadonlyArray<string>
): ChildProcess => {
  const env: NodeJS.ProcessEnv = { ...process.env, SIDECAR_CONFIG: configPath, SIDECAR_PORT: String(port) }
  for (const k of ["SIDECAR_HOST", "SIDECAR_DB", "SIDECAR_LOG_LEVEL", "NODE_OPTIONS"]) delete env[k]
  const log = openSync(logFile, "a")
  const loader = entry.endsWith(".js") ? startFlags(root) : ["--import", "tsx"]
  return track(spawn(process.execPath, [...extraNodeArgs, ...loader, entry], {
    cwd: root,
    env,
    stdio: ["ignore", log, log]
  }))
}

let nextId = 1

/** Sends one command to the load generator and waits for its result (bounded by `timeoutMs`). */
export const ask = <R extends LoadResult>(
  load: ChildProcess,
  command: LoadCommand,
  timeoutMs: number,
  onHolding?: (open: number) => void
): Promise<R> => {
  const id = nextId++
  return new Promise<R>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer)
      load.off("message", onMessage)
      load.off("exit", onExit)
    }
    const onMessage = (m: ChildMessage) => {
      if (!("id" in m) || m.id !== id) return
      if (m.type === "holding") return onHolding?.(m.open)
      done()
      if (m.type === "result") resolve(m.result as R)
      else if (m.type === "failed") reject(new Error(`load generator: ${m.error}`))
    }
    const onExit = () => {
      done()
      reject(new Error("load generator exited"))
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`${command.kind} did not finish within ${timeoutMs} ms`))
    }, timeoutMs)
    load.on("message", onMessage)
    load.once("exit", onExit)
    load.send({ id, command })
  })
}

/** SIGTERM every child still running, then SIGKILL whatever is left after `graceMs`. */
export const killAll = async (graceMs = 3_000): Promise<void> => {
  const left = [...children].filter(alive)
  for (const c of left) c.kill("SIGTERM")
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline && left.some(alive)) await sleep(50)
  for (const c of left) if (alive(c)) c.kill("SIGKILL")
}

/** Last resort (process exit): SIGKILL, synchronously. */
export const killAllNow = (): void => {
  for (const c of children) if (alive(c)) c.kill("SIGKILL")
}

/** Waits for a child to exit (up to `timeoutMs`); true if it did. */
export const waitExit = async (c: ChildProcess, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && alive(c)) await sleep(50)
  return !alive(c)
}
