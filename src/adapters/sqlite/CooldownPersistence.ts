/**
 * Persisted cooldown state (SPEC §5: a restart does not forget a cooldown in force): restored into
 * the FleetStore at startup, then snapshotted off the request path every second and at shutdown.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Clock, Duration, Effect, Ref, type Scope } from "effect"
import { type CooldownReason, type CooldownState, healthy } from "../../domain/Cooldown.js"
import { FleetStore } from "../../domain/ports/FleetStore.js"

/** A `backend_state` row; times are epoch ms. A `type`, not an interface: `sql.insert` wants a Record. */
type StateRow = {
  readonly id: string
  readonly streak: number
  readonly last_ms: number
  readonly cooling_since: number
  readonly cooling_until: number
  readonly reason: string | null
  readonly errors: number
  readonly generation: number
  readonly updated_at: number
}

const reasonOf = (r: string | null): CooldownReason | undefined =>
  r === "rate_limited" || r === "errors" ? r : undefined

const fromRow = (r: StateRow): CooldownState => ({
  streak: r.streak,
  lastMs: r.last_ms,
  since: r.cooling_since,
  until: r.cooling_until,
  reason: reasonOf(r.reason),
  errors: r.errors,
  generation: r.generation
})

const toRow = (id: string, c: CooldownState, now: number): StateRow => ({
  id,
  streak: c.streak,
  last_ms: c.lastMs,
  cooling_since: c.since,
  cooling_until: c.until,
  reason: c.reason ?? null,
  errors: c.errors,
  generation: c.generation,
  updated_at: now
})

const same = (a: CooldownState, b: CooldownState) =>
  a === b || (a.streak === b.streak && a.lastMs === b.lastMs && a.since === b.since && a.until === b.until &&
    a.reason === b.reason && a.errors === b.errors && a.generation === b.generation)

export interface CooldownPersistenceOptions {
  /** How often the fleet's cooldowns are compared with what was last written. */
  readonly interval: Duration.DurationInput
}

/**
 * Restores the stored cooldowns into the FleetStore (call after the backends are set: only
 * existing ids are restored; rows of unknown ids are deleted), then forks, in the current scope,
 * a fiber that writes the backends whose cooldown changed since the last write, in one
 * transaction per round; a last round runs when the scope closes.
 * Invariant: never touches the database from the request path (it reads `fleet.state` only).
 */
export const start = (
  options: CooldownPersistenceOptions = { interval: "1 second" }
): Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient | FleetStore | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const fleet = yield* FleetStore
    yield* sql`DELETE FROM backend_state WHERE id NOT IN (SELECT id FROM backends)`
    const rows = yield* sql<StateRow>`SELECT * FROM backend_state`
    yield* fleet.restoreCooldowns(new Map(rows.map((r) => [r.id, fromRow(r)])))
    const cooling = rows.filter((r) => r.cooling_until > 0).length
    if (rows.length > 0) {
      yield* Effect.logInfo("cooldown state restored").pipe(Effect.annotateLogs({ backends: rows.length, with_deadline: cooling }))
    }
    const written = yield* Ref.make<ReadonlyMap<string, CooldownState>>(
      new Map(rows.map((r) => [r.id, fromRow(r)]))
    )

    const snapshot = Effect.gen(function*() {
      const state = yield* fleet.state
      const last = yield* Ref.get(written)
      const now = yield* Clock.currentTimeMillis
      const changed: Array<StateRow> = []
      const current = new Map<string, CooldownState>()
      for (const [id, rt] of state.runtime) {
        current.set(id, rt.cooldown)
        const before = last.get(id)
        // A backend never written and still in its initial state needs no row.
        if (!same(before ?? healthy, rt.cooldown)) {
          changed.push(toRow(id, rt.cooldown, now))
        }
      }
      if (changed.length > 0) {
        yield* sql.withTransaction(Effect.forEach(changed, (row) =>
          sql`INSERT INTO backend_state ${sql.insert(row)} ON CONFLICT (id) DO UPDATE SET
            streak = excluded.streak, last_ms = excluded.last_ms, cooling_since = excluded.cooling_since,
            cooling_until = excluded.cooling_until, reason = excluded.reason, errors = excluded.errors,
            generation = excluded.generation, updated_at = excluded.updated_at`, { discard: true }))
      }
      yield* Ref.set(written, current)
    }).pipe(
      Effect.uninterruptible,
      Effect.catchAllCause((cause) => Effect.logError("cooldown state not saved", cause))
    )

    // Finalizers run last-in first-out: this one is added first, so it runs after the loop is interrupted.
    yield* Effect.addFinalizer(() => snapshot)
    yield* Effect.sleep(options.interval).pipe(Effect.zipRight(snapshot), Effect.forever, Effect.forkScoped)
  })
