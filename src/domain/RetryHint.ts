/**
 * Reads an upstream's "come back later" hint off a 429's headers. Garbage is ignored,
 * never fatal: a hint we cannot read is simply absent.
 */
import { Option } from "effect"

/** Header names are lower-case, as Node and undici deliver them. */
export type HeaderBag = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

const first = (headers: HeaderBag, name: string): string | undefined => {
  const v = headers[name]
  return typeof v === "string" ? v : v?.[0]
}

const finiteNonNegative = (n: number): Option.Option<number> =>
  Number.isFinite(n) && n >= 0 ? Option.some(Math.ceil(n)) : Option.none()

/** `Retry-After`: delay-seconds (decimals tolerated) or an HTTP-date (RFC 9110 §10.2.3). */
export const parseRetryAfter = (value: string, now: number): Option.Option<number> => {
  const v = value.trim()
  if (v === "") return Option.none()
  if (/^\d+(\.\d+)?$/.test(v)) return finiteNonNegative(Number(v) * 1000)
  const at = Date.parse(v)
  if (Number.isNaN(at) || !/[a-z]/i.test(v)) return Option.none()
  return Option.some(Math.max(0, at - now))
}

/** `retry-after-ms` (OpenAI, Azure): milliseconds. */
export const parseRetryAfterMs = (value: string): Option.Option<number> => {
  const v = value.trim()
  return /^\d+(\.\d+)?$/.test(v) ? finiteNonNegative(Number(v)) : Option.none()
}

const unitMs: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }

/** `x-ratelimit-reset-requests` (OpenAI, Groq): a Go-style duration such as `1m30s`, `6m0s`, `250ms`, `2.5s`. */
export const parseResetDuration = (value: string): Option.Option<number> => {
  const v = value.trim()
  if (!/^(\d+(\.\d+)?(h|ms|m|s))+$/.test(v)) return Option.none()
  let total = 0
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) total += Number(m[1]) * (unitMs[m[2]!] ?? 0)
  return finiteNonNegative(total)
}

/**
 * The hint in milliseconds, most precise header first: `retry-after-ms`, then `Retry-After`,
 * then `x-ratelimit-reset-requests`. `now` is needed for the HTTP-date form.
 */
export const retryHintMs = (headers: HeaderBag, now: number): Option.Option<number> => {
  const ms = first(headers, "retry-after-ms")
  const ra = first(headers, "retry-after")
  const reset = first(headers, "x-ratelimit-reset-requests")
  return (ms === undefined ? Option.none() : parseRetryAfterMs(ms)).pipe(
    Option.orElse(() => (ra === undefined ? Option.none() : parseRetryAfter(ra, now))),
    Option.orElse(() => (reset === undefined ? Option.none() : parseResetDuration(reset)))
  )
}
