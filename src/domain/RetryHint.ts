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

/** Whole milliseconds, rounded up, after dropping binary-fraction noise (4.03 s × 1000 is 4030.0000000000005). */
const finiteNonNegative = (n: number): Option.Option<number> =>
  Number.isFinite(n) && n >= 0 ? Option.some(Math.ceil(Math.round(n * 1e6) / 1e6)) : Option.none()

const months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
const day = "(?:mon|tue|wed|thu|fri|sat|sun)"
const time = "(\\d{2}):(\\d{2}):(\\d{2})"
/** The three HTTP-date forms of RFC 9110 §5.6.7, all GMT: IMF-fixdate, RFC 850, asctime. */
const imfFixdate = new RegExp(`^${day}, (\\d{2}) ([a-z]{3}) (\\d{4}) ${time} gmt$`, "i")
const rfc850 = new RegExp(`^${day}[a-z]*, (\\d{2})-([a-z]{3})-(\\d{2}) ${time} gmt$`, "i")
const asctime = new RegExp(`^${day} ([a-z]{3}) +(\\d{1,2}) ${time} (\\d{4})$`, "i")

const utc = (year: number, month: string, dayOfMonth: string, h: string, m: string, sec: string): number | undefined => {
  const mi = months.indexOf(month.toLowerCase())
  return mi < 0 ? undefined : Date.UTC(year, mi, Number(dayOfMonth), Number(h), Number(m), Number(sec))
}

/** An HTTP-date as epoch ms, or undefined: strict, so that garbage is never read as a date. */
export const parseHttpDate = (v: string): number | undefined => {
  let m = imfFixdate.exec(v)
  if (m) return utc(Number(m[3]), m[2]!, m[1]!, m[4]!, m[5]!, m[6]!)
  m = rfc850.exec(v)
  if (m) {
    // Two-digit years: RFC 9110 says read them as within 50 years of now; 19xx/20xx suffices here.
    const yy = Number(m[3])
    return utc(yy >= 70 ? 1900 + yy : 2000 + yy, m[2]!, m[1]!, m[4]!, m[5]!, m[6]!)
  }
  m = asctime.exec(v)
  if (m) return utc(Number(m[6]), m[1]!, m[2]!, m[3]!, m[4]!, m[5]!)
  return undefined
}

/** `Retry-After`: delay-seconds (decimals tolerated) or an HTTP-date (RFC 9110 §10.2.3). */
export const parseRetryAfter = (value: string, now: number): Option.Option<number> => {
  const v = value.trim()
  if (v === "") return Option.none()
  if (/^\d+(\.\d+)?$/.test(v)) return finiteNonNegative(Number(v) * 1000)
  const at = parseHttpDate(v)
  return at === undefined ? Option.none() : Option.some(Math.max(0, at - now))
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
