/**
 * What the admin API accepts (SPEC §6): backend bodies in the YAML field names, validated with
 * the Backend schema plus the known-pool rule, and the usage query's parameters. Problems name
 * the field (`rpm: expected a positive number, got -1`) and never show a key.
 */
import { Data, Either, Redacted, Schema } from "effect"
import { Backend } from "../../domain/Backend.js"
import type { UsageGroupBy, UsageQuery } from "../../domain/ports/UsageReports.js"
import { fromParseError, type Problem, renderProblem, scrub } from "../config/Problems.js"

/** An admin request that cannot be served: its HTTP status and an OpenAI-shaped error's message and code. */
export class AdminFailure extends Data.TaggedError("AdminFailure")<{
  readonly status: number
  readonly message: string
  readonly code: string
}> {}

export const invalidInput = (problems: ReadonlyArray<string>, code = "invalid_backend") =>
  new AdminFailure({ status: 400, message: problems.join("; "), code })

export const notFound = (id: string) =>
  new AdminFailure({ status: 404, message: `No backend with id ${JSON.stringify(id)}`, code: "backend_not_found" })

/** A duplicate id is a conflict with existing state, not a malformed body: 409. */
export const alreadyExists = (id: string) =>
  new AdminFailure({ status: 409, message: `id: a backend with id ${JSON.stringify(id)} already exists`, code: "backend_exists" })

const decode = Schema.decodeUnknownEither(Backend, { errors: "all", onExcessProperty: "error" })

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Problems about `api_key` say what is wrong with it, never what it was. */
const hideKey = (p: Problem): Problem =>
  p.path[0] === "api_key" ? { path: p.path, message: p.message.replace(/, got [\s\S]*$/, "") } : p

/** Key-like strings long enough to scrub safely from messages. */
const keyTexts = (...values: ReadonlyArray<unknown>): ReadonlyArray<string> =>
  values.filter((v): v is string => typeof v === "string" && v.length >= 4).sort((a, b) => b.length - a.length)

/**
 * Validates an encoded backend (YAML names): the schema (every problem, unknown fields refused),
 * a pool from `routing.pools`, and a non-empty key when one is given. `secrets` are scrubbed from
 * every message on top of the body's own `api_key`.
 */
export const validateBackend = (
  input: Record<string, unknown>,
  pools: ReadonlyArray<string>,
  secrets: ReadonlyArray<string> = []
): Either.Either<Backend, AdminFailure> => {
  const decoded = decode(input)
  const problems: Array<Problem> = Either.isLeft(decoded) ? fromParseError(decoded.left, input).map(hideKey) : []
  const pool = input["pool"]
  if (typeof pool === "string" && pool.trim() !== "" && !pools.includes(pool)) {
    problems.push({ path: ["pool"], message: `unknown pool ${JSON.stringify(pool)} (routing.pools: ${pools.join(", ")})` })
  }
  const key = input["api_key"]
  if (typeof key === "string" && key.trim() === "") problems.push({ path: ["api_key"], message: "must not be empty" })
  if (problems.length > 0 || Either.isLeft(decoded)) {
    const hidden = keyTexts(key, ...secrets)
    return Either.left(invalidInput(problems.map((p) => scrub(renderProblem(p), hidden))))
  }
  return Either.right(decoded.right)
}

/** A body that is not a JSON object. */
export const notAnObject = invalidInput(["body: expected a JSON object"], "invalid_body")

/** `POST /admin/backends`: the body is a whole backend. */
export const backendToCreate = (body: unknown, pools: ReadonlyArray<string>): Either.Either<Backend, AdminFailure> =>
  isRecord(body) ? validateBackend(body, pools) : Either.left(notAnObject)

/**
 * `PATCH /admin/backends/:id`: each field given replaces the existing one; `null` removes an
 * optional field (or restores its default). The id cannot change; the key is kept unless given.
 */
export const patchedBackend = (
  existing: Backend,
  patch: unknown,
  pools: ReadonlyArray<string>
): Either.Either<Backend, AdminFailure> => {
  if (!isRecord(patch)) return Either.left(notAnObject)
  if ("id" in patch && patch["id"] !== existing.id) {
    return Either.left(invalidInput([`id: cannot be changed (this backend is ${JSON.stringify(existing.id)})`]))
  }
  const merged: Record<string, unknown> = { ...Schema.encodeSync(Backend)(existing) }
  for (const [field, value] of Object.entries(patch)) {
    if (value === null) delete merged[field]
    else merged[field] = value
  }
  return validateBackend(merged, pools, existing.apiKey === undefined ? [] : [Redacted.value(existing.apiKey)])
}

// ---- usage query parameters ----

export const groupByValues: ReadonlyArray<UsageGroupBy> = ["backend", "model", "pool", "phase"]

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/
const isoPattern = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i

const shown = (v: string) => JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)

/**
 * An instant (epoch ms) from ISO-8601 (`2024-05-01`, `2024-05-01T12:00:00Z`), a duration meaning
 * "that long before now" (`30m`, `24h`, `7d`; units ms, s, m, h, d, w), or `now`.
 */
export const parseInstant = (text: string, now: number): number | undefined => {
  const t = text.trim()
  if (t === "now") return now
  const d = durationPattern.exec(t)
  if (d !== null) return now - Number(d[1]) * unitMs[d[2]!]!
  if (!isoPattern.test(t)) return undefined
  const ms = Date.parse(t)
  return Number.isFinite(ms) ? ms : undefined
}

/** `since`, `until` (defaults: 24 h ago, now) and `group_by` (default backend); unknown parameters are refused. */
export const usageQuery = (
  params: Iterable<readonly [string, string]>,
  now: number
): Either.Either<UsageQuery, AdminFailure> => {
  const problems: Array<string> = []
  const given = new Map<string, string>()
  for (const [name, value] of params) {
    if (!["since", "until", "group_by"].includes(name)) problems.push(`${name}: unknown parameter (allowed: since, until, group_by)`)
    else if (given.has(name)) problems.push(`${name}: given more than once`)
    else given.set(name, value)
  }
  const instant = (name: string, fallback: number) => {
    const v = given.get(name)
    if (v === undefined) return fallback
    const ms = parseInstant(v, now)
    if (ms === undefined) {
      problems.push(`${name}: expected an ISO-8601 instant (2024-05-01T00:00:00Z) or a duration before now (30m, 24h, 7d), got ${shown(v)}`)
    }
    return ms ?? fallback
  }
  const since = instant("since", now - unitMs["d"]!)
  const until = instant("until", now)
  const by = given.get("group_by") ?? "backend"
  const groupBy = groupByValues.find((g) => g === by)
  if (groupBy === undefined) problems.push(`group_by: must be one of: ${groupByValues.join(", ")}, got ${shown(by)}`)
  if (problems.length === 0 && since >= until) {
    problems.push(`since: must be before until (since ${new Date(since).toISOString()}, until ${new Date(until).toISOString()})`)
  }
  if (problems.length > 0 || groupBy === undefined) return Either.left(invalidInput(problems, "invalid_parameter"))
  return Either.right({ since, until, groupBy })
}
