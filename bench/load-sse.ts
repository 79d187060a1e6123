/**
 * SSE generators for load.ts: closed-loop streams at a fixed concurrency (TTFB, total time, and
 * per-event delivery delay from the upstream's send stamps), and "hold N streams open" for RSS.
 */
import { Pool } from "undici"
import { CLIENT_HEADERS, type HoldResult, type LoadCommand, nowNs, PATH, pcts, type SseResult, sseBody } from "./protocol.js"

const DONE = "data: [DONE]\n\n"
const STAMP = /"bt":(\d+)/g

interface StreamStats {
  readonly ttfbUs: number
  readonly totalUs: number
  readonly complete: boolean
}

interface StreamHooks {
  /** First body bytes arrived. */
  readonly onFirst?: () => void
  /** Every chunk, with its arrival time (only when per-event delays are wanted). */
  readonly onChunk?: (chunk: Buffer, at: bigint) => void
}

/** The first error any stream met (for the report). */
let firstError: string | undefined
const failed = (why: string) => {
  firstError ??= why
  return undefined
}

/** One streamed request; resolves with its timings, or undefined on an error. Never rejects. */
const stream = (pool: Pool, body: string, hooks: StreamHooks): Promise<StreamStats | undefined> =>
  new Promise((resolve) => {
    const t0 = nowNs()
    pool.request({ path: PATH, method: "POST", headers: CLIENT_HEADERS, body }).then(
      (r) => {
        if (r.statusCode !== 200) {
          const why = failed(`status ${r.statusCode}`)
          r.body.dump().then(() => resolve(why), () => resolve(why))
          return
        }
        let first = 0n
        let tail = ""
        r.body.on("data", (chunk: Buffer) => {
          const at = nowNs()
          if (first === 0n) {
            first = at
            hooks.onFirst?.()
          }
          hooks.onChunk?.(chunk, at)
          tail = (tail + chunk.toString("latin1", Math.max(0, chunk.length - DONE.length))).slice(-DONE.length)
        })
        r.body.on("end", () => {
          const end = nowNs()
          resolve({ ttfbUs: Number(first - t0) / 1000, totalUs: Number(end - t0) / 1000, complete: tail === DONE })
        })
        r.body.on("error", (e: Error) => resolve(failed(`body: ${e.message}`)))
      },
      (e: Error) => resolve(failed(`request: ${e.message}`))
    )
  })

/** `concurrency` loops of one stream after another, until the deadline or `maxStreams`. */
export const sse = async (c: Extract<LoadCommand, { kind: "sse" }>): Promise<SseResult> => {
  const pool = new Pool(c.origin, { connections: c.concurrency, pipelining: 1 })
  const body = sseBody(c.events, c.gapMs)
  firstError = undefined
  const ttfb: Array<number> = []
  const total: Array<number> = []
  const delays: Array<number> = []
  let errors = 0
  let incomplete = 0
  let started = 0
  let eventsSeen = 0
  const onChunk = (chunk: Buffer, at: bigint) => {
    const atUs = Number(at / 1000n)
    const text = chunk.toString("latin1")
    for (const m of text.matchAll(STAMP)) delays.push(atUs - Number(m[1]))
    for (let i = text.indexOf("\n\n"); i >= 0; i = text.indexOf("\n\n", i + 2)) eventsSeen++
  }
  const hooks: StreamHooks = c.eventTimes ? { onChunk } : {}
  const start = nowNs()
  const deadline = Date.now() + c.durationMs
  const worker = async (_: unknown, i: number) => {
    if (c.staggerMs > 0) await new Promise((r) => setTimeout(r, i * c.staggerMs))
    while (Date.now() < deadline && started < c.maxStreams) {
      started++
      const s = await stream(pool, body, hooks)
      if (s === undefined) errors++
      else {
        ttfb.push(s.ttfbUs)
        total.push(s.totalUs)
        if (!s.complete) incomplete++
      }
    }
  }
  await Promise.all(Array.from({ length: c.concurrency }, worker))
  const elapsedMs = Number(nowNs() - start) / 1e6
  await pool.destroy()
  return {
    streams: total.length,
    errors,
    incomplete,
    elapsedMs,
    ttfbUs: pcts(ttfb),
    totalUs: pcts(total),
    eventDelayUs: c.eventTimes ? pcts(delays) : undefined,
    eventsSeen,
    firstError
  }
}

/**
 * Opens `streams` slow streams in paced batches, tells the caller once every one has its first event
 * (`onHolding`), keeps them all open `holdMs` longer, then cuts them all and reports.
 */
export const hold = (c: Extract<LoadCommand, { kind: "hold" }>, onHolding: (open: number) => void): Promise<HoldResult> =>
  new Promise((resolve) => {
    const pool = new Pool(c.origin, { connections: c.streams, pipelining: 1 })
    const body = sseBody(c.events, c.gapMs)
    const ttfb: Array<number> = []
    let open = 0
    let maxOpen = 0
    let firsts = 0
    let errors = 0
    let launched = 0
    let batchAt = 0
    let finished = false
    firstError = undefined
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(guard)
      resolve({ opened: firsts, errors: errors + (c.streams - firsts - errors), maxOpen, ttfbUs: pcts(ttfb), firstError })
      void pool.destroy() // cuts the streams still open; their errors are not counted
    }
    const guard = setTimeout(finish, 30_000 + c.holdMs)
    const maybeHolding = () => {
      if (finished || firsts + errors < c.streams) return
      onHolding(open)
      setTimeout(finish, c.holdMs)
    }
    const launch = (n: number) => {
      for (let k = 0; k < n; k++) {
        const t0 = nowNs()
        let got = false
        const onFirst = () => {
          got = true
          ttfb.push(Number(nowNs() - t0) / 1000)
          firsts++
          if (++open > maxOpen) maxOpen = open
          maybeHolding()
        }
        void stream(pool, body, { onFirst }).then((s) => {
          if (finished) return
          if (got) open--
          if (s === undefined || !s.complete) {
            errors++
            if (!got) maybeHolding()
          }
        })
      }
    }
    // Ramp in batches, each once the previous one has its first events (or after 2 s): a burst of
    // 1,000 connects overflows a default listen backlog (511) and the kernel's SYN retries skew everything.
    const BATCH = 50
    const next = () => {
      if (finished) return
      const n = Math.min(BATCH, c.streams - launched)
      launch(n)
      launched += n
      batchAt = Date.now()
      if (launched < c.streams) setTimeout(check, 5)
    }
    const check = () => {
      if (finished) return
      if (firsts + errors >= launched || Date.now() - batchAt > 2_000) next()
      else setTimeout(check, 5)
    }
    next()
  })
