/**
 * The admin operations on backends (SPEC §6), independent of HTTP so the CLI's direct mode runs
 * the same code: list / get / create / patch / remove, answering snake_case views whose key is
 * only ever its last four characters.
 */
import { Effect, Either, Option } from "effect"
import { type Backend, keyHint } from "../../domain/Backend.js"
import type { BackendView } from "../../domain/Fleet.js"
import { BackendRegistry } from "../../domain/ports/BackendRegistry.js"
import { FleetStore } from "../../domain/ports/FleetStore.js"
import { AppConfig } from "../config/ConfigFile.js"
import { alreadyExists, type AdminFailure, backendToCreate, notFound, patchedBackend } from "./AdminInput.js"

/** Live routing state of a backend, as the admin API shows it. */
export interface BackendStateJson {
  readonly cooling_until: string | null
  readonly cooldown_reason: string | null
  readonly consecutive_429s: number
  readonly consecutive_errors: number
  /** Requests left in the current 60 s window; null without `rpm`. */
  readonly rate_window_remaining: number | null
}

export interface ModelRouteJson {
  readonly upstream: string | null
  readonly input_per_mtok: number
  readonly output_per_mtok: number
}

/** One backend as the admin API answers it: the YAML names, the key as `…abcd`, and live state. */
export interface BackendJson {
  readonly id: string
  readonly pool: string
  readonly base_url: string
  readonly api_key: string | null
  readonly rpm: number | null
  readonly timeout_ms: number
  readonly first_token_timeout_ms: number
  readonly stream_idle_timeout_ms: number
  readonly prefill_continuation: boolean
  readonly continuation_extra_body: Readonly<Record<string, unknown>> | null
  readonly continuation_message_extra: Readonly<Record<string, unknown>> | null
  readonly models: Readonly<Record<string, ModelRouteJson>> | null
  readonly enabled: boolean
  /** Null when not known: the CLI's direct mode reads storage, not a running Sidecar. */
  readonly state: BackendStateJson | null
}

export const stateJson = (v: BackendView): BackendStateJson => ({
  cooling_until: Option.match(v.coolingUntil, { onNone: () => null, onSome: (ms) => new Date(ms).toISOString() }),
  cooldown_reason: v.cooldownReason ?? null,
  consecutive_429s: v.consecutive429s,
  consecutive_errors: v.consecutiveErrors,
  rate_window_remaining: Option.getOrNull(v.rateWindowRemaining)
})

export const backendJson = (b: Backend, live: BackendView | undefined): BackendJson => ({
  id: b.id,
  pool: b.pool,
  base_url: b.baseUrl,
  api_key: keyHint(b) ?? null,
  rpm: b.rpm ?? null,
  timeout_ms: b.timeoutMs,
  first_token_timeout_ms: b.firstTokenTimeoutMs,
  stream_idle_timeout_ms: b.streamIdleTimeoutMs,
  prefill_continuation: b.prefillContinuation,
  continuation_extra_body: b.continuationExtraBody ?? null,
  continuation_message_extra: b.continuationMessageExtra ?? null,
  models: b.models === undefined
    ? null
    : Object.fromEntries(Object.entries(b.models).map(([name, r]) => [
      name,
      { upstream: r.upstream ?? null, input_per_mtok: r.inputPerMtok, output_per_mtok: r.outputPerMtok }
    ])),
  enabled: b.enabled,
  state: live === undefined ? null : stateJson(live)
})

/** Live views by id, when a FleetStore is in context (always in the server; not in the CLI's direct mode). */
const liveViews = Effect.flatMap(Effect.serviceOption(FleetStore), (fleet) =>
  Option.match(fleet, {
    onNone: () => Effect.succeed(new Map<string, BackendView>()),
    onSome: (f) => Effect.map(f.view, (vs) => new Map(vs.map((v) => [v.backend.id, v])))
  }))

const answer = (b: Backend) => Effect.map(liveViews, (live) => backendJson(b, live.get(b.id)))

const pools = Effect.map(AppConfig, (c) => c.routing.pools)

const existing = (id: string) =>
  Effect.flatMap(BackendRegistry, (r) => r.get(id)).pipe(
    Effect.flatMap(Option.match({ onNone: () => Effect.fail(notFound(id)), onSome: Effect.succeed }))
  )

const audit = (event: string, id: string) => Effect.logInfo(event).pipe(Effect.annotateLogs({ backend: id }))

/** `GET /admin/backends`. */
export const listBackends: Effect.Effect<{ readonly backends: ReadonlyArray<BackendJson> }, never, BackendRegistry> =
  Effect.gen(function*() {
    const backends = yield* Effect.flatMap(BackendRegistry, (r) => r.list)
    const live = yield* liveViews
    return { backends: backends.map((b) => backendJson(b, live.get(b.id))) }
  })

/** `GET /admin/backends/:id`. */
export const getBackend = (id: string): Effect.Effect<BackendJson, AdminFailure, BackendRegistry> =>
  Effect.flatMap(existing(id), answer)

/** `POST /admin/backends`: validated, then routing when this returns. */
export const createBackend = (body: unknown): Effect.Effect<BackendJson, AdminFailure, BackendRegistry | AppConfig> =>
  Effect.gen(function*() {
    const backend = yield* Either.match(backendToCreate(body, yield* pools), { onLeft: Effect.fail, onRight: Effect.succeed })
    const registry = yield* BackendRegistry
    yield* registry.create(backend).pipe(Effect.catchTag("BackendExists", (e) => Effect.fail(alreadyExists(e.id))))
    yield* audit("admin_backend_created", backend.id)
    return yield* answer(backend)
  })

/** `PATCH /admin/backends/:id`: the patch merged onto the existing backend, validated as a whole. */
export const patchBackend = (
  id: string,
  body: unknown
): Effect.Effect<BackendJson, AdminFailure, BackendRegistry | AppConfig> =>
  Effect.gen(function*() {
    const current = yield* existing(id)
    const next = yield* Either.match(patchedBackend(current, body, yield* pools), {
      onLeft: Effect.fail,
      onRight: Effect.succeed
    })
    const registry = yield* BackendRegistry
    yield* registry.replace(next).pipe(Effect.catchTag("BackendNotFound", () => Effect.fail(notFound(id))))
    yield* audit("admin_backend_updated", id)
    return yield* answer(next)
  })

/** `DELETE /admin/backends/:id`. */
export const removeBackend = (id: string): Effect.Effect<void, AdminFailure, BackendRegistry> =>
  Effect.flatMap(BackendRegistry, (r) => r.remove(id)).pipe(
    Effect.catchTag("BackendNotFound", () => Effect.fail(notFound(id))),
    Effect.zipRight(audit("admin_backend_removed", id))
  )
