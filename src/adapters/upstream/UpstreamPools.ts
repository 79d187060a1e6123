/**
 * The keep-alive connection pools: one undici `Pool` per upstream origin, created on first use and
 * owned by the Upstream layer (closed by its finalizer). Also caches each base URL's parsed form.
 */
import { Pool } from "undici"
import { parseBaseUrl, type UpstreamBase } from "./UpstreamUrl.js"

export interface PoolOptions {
  /** Idle keep-alive sockets are closed after this long, unless the server hints shorter (undici default 4 s). */
  readonly keepAliveTimeoutMs?: number
  /** Upper bound on connections per origin (default unlimited). */
  readonly connectionsPerOrigin?: number
  /** How long `close` waits for in-flight requests before destroying the sockets. */
  readonly closeGraceMs?: number
}

export interface UpstreamTarget {
  readonly base: UpstreamBase
  readonly pool: Pool
}

/**
 * Invariants: at most one pool per origin for the registry's lifetime (so sequential requests to
 * a backend reuse their connections); undici's own headers/body timers are off (the attempt owns
 * every timeout); after `close`, no pool is created again.
 */
export class UpstreamPools {
  private readonly targets = new Map<string, UpstreamTarget>()
  private readonly pools = new Map<string, Pool>()
  private closed = false

  constructor(private readonly options: PoolOptions = {}) {}

  /** The parsed base URL and the pool for a backend's `base_url`. Throws once closed. */
  target(baseUrl: string): UpstreamTarget {
    const known = this.targets.get(baseUrl)
    if (known !== undefined) return known
    if (this.closed) throw new Error("upstream pools are closed")
    const base = parseBaseUrl(baseUrl)
    let pool = this.pools.get(base.origin)
    if (pool === undefined) {
      pool = new Pool(base.origin, {
        pipelining: 1,
        headersTimeout: 0,
        bodyTimeout: 0,
        ...(this.options.keepAliveTimeoutMs === undefined ? {} : { keepAliveTimeout: this.options.keepAliveTimeoutMs }),
        ...(this.options.connectionsPerOrigin === undefined ? {} : { connections: this.options.connectionsPerOrigin })
      })
      this.pools.set(base.origin, pool)
    }
    const target = { base, pool }
    this.targets.set(baseUrl, target)
    return target
  }

  /** Closes every pool: waits up to the grace period for in-flight requests, then destroys. Never rejects. */
  async close(): Promise<void> {
    this.closed = true
    const pools = [...this.pools.values()]
    this.pools.clear()
    this.targets.clear()
    if (pools.length === 0) return
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.closeGraceMs ?? 2000)
    })
    await Promise.race([Promise.allSettled(pools.map((p) => p.close())), grace])
    clearTimeout(timer)
    await Promise.allSettled(pools.map((p) => p.destroy()))
  }
}
