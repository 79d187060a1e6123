/**
 * The load generator (own process, driven over IPC by run.ts): a closed-loop generator (the
 * fallback when wrk is missing) and an open-loop fixed-rate one; the SSE generators are in load-sse.ts.
 */
import { Pool } from "undici"
import { hold, sse } from "./load-sse.js"
import {
  CLIENT_HEADERS,
  type ChildMessage,
  type ClosedResult,
  exitWithParent,
  JSON_BODY,
  type LoadCommand,
  type LoadRequest,
  type LoadResult,
  nowNs,
  PATH,
  pcts,
  type RateResult
} from "./protocol.js"

exitWithParent()

/** `connections` loops of request → read body → next, until the deadline. */
const closed = async (c: Extract<LoadCommand, { kind: "closed" }>): Promise<ClosedResult> => {
  const pool = new Pool(c.origin, { connections: c.connections, pipelining: 1 })
  const deadline = Date.now() + c.durationMs
  let requests = 0
  let errors = 0
  let firstError: string | undefined
  const start = nowNs()
  const worker = async () => {
    while (Date.now() < deadline) {
      try {
        const r = await pool.request({ path: PATH, method: "POST", headers: CLIENT_HEADERS, body: JSON_BODY })
        await r.body.dump()
        if (r.statusCode === 200) requests++
        else {
          errors++
          firstError ??= `status ${r.statusCode}`
        }
      } catch (e) {
        errors++
        firstError ??= e instanceof Error ? e.message : String(e)
      }
    }
  }
  await Promise.all(Array.from({ length: c.connections }, worker))
  const elapsedMs = Number(nowNs() - start) / 1e6
  await pool.destroy()
  return firstError === undefined ? { requests, errors, elapsedMs } : { requests, errors, elapsedMs, firstError }
}

/**
 * Open loop: request i is due at start + i/rate, whatever has completed; latency runs from the
 * send (so it includes any queueing in the target) to the last body byte.
 */
const rate = (c: Extract<LoadCommand, { kind: "rate" }>): Promise<RateResult> =>
  new Promise((resolve) => {
    const pool = new Pool(c.origin, { connections: c.connections, pipelining: 1 })
    const total = Math.max(1, Math.round((c.rate * c.durationMs) / 1000))
    const intervalNs = 1e9 / c.rate
    const latencies: Array<number> = []
    let ok = 0
    let errors = 0
    let completed = 0
    let maxSendLagUs = 0
    let i = 0
    let finished = false
    const start = nowNs() + 2_000_000n
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(guard)
      void pool.destroy()
      resolve({ sent: i, ok, errors: errors + (i - completed), latencyUs: pcts(latencies), maxSendLagUs })
    }
    const guard = setTimeout(finish, c.durationMs + 15_000)
    const settle = () => {
      if (++completed === total) finish()
    }
    const fire = () => {
      const t0 = nowNs()
      pool.request({ path: PATH, method: "POST", headers: CLIENT_HEADERS, body: JSON_BODY }).then(
        async (r) => {
          try {
            await r.body.dump()
            latencies.push(Number(nowNs() - t0) / 1000)
            if (r.statusCode === 200) ok++
            else errors++
          } catch {
            errors++
          }
          settle()
        },
        () => {
          errors++
          settle()
        }
      )
    }
    const due = (k: number) => start + BigInt(Math.round(k * intervalNs))
    const tick = () => {
      if (finished) return
      const t = nowNs()
      while (i < total && due(i) <= t) {
        const lag = Number(t - due(i)) / 1000
        if (lag > maxSendLagUs) maxSendLagUs = lag
        fire()
        i++
      }
      if (i < total) setTimeout(tick, Math.max(0, Math.floor(Number(due(i) - nowNs()) / 1e6)))
    }
    setTimeout(tick, 2)
  })

const run = (command: LoadCommand, id: number): Promise<LoadResult> => {
  switch (command.kind) {
    case "closed":
      return closed(command)
    case "rate":
      return rate(command)
    case "sse":
      return sse(command)
    case "hold":
      return hold(command, (open) => send({ type: "holding", id, open }))
  }
}

const send = (m: ChildMessage) => process.send?.(m)

process.on("message", (req: LoadRequest) => {
  run(req.command, req.id).then(
    (result) => send({ type: "result", id: req.id, result }),
    (e: unknown) => send({ type: "failed", id: req.id, error: e instanceof Error ? e.message : String(e) })
  )
})
send({ type: "ready", port: 0 })
