// RetryHint: reading a 429's "come back later" hint (Retry-After seconds / HTTP-date, retry-after-ms,
// x-ratelimit-reset-requests), its precedence, and that garbage is ignored rather than fatal.
import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import {
  type HeaderBag,
  parseResetDuration,
  parseRetryAfter,
  parseRetryAfterMs,
  retryHintMs
} from "../../src/domain/RetryHint.js"

const DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
const DATE_MS = Date.parse(DATE)

const withTimeZone = <A>(tz: string, f: () => A): A => {
  const saved = process.env["TZ"]
  process.env["TZ"] = tz
  try {
    return f()
  } finally {
    if (saved === undefined) delete process.env["TZ"]
    else process.env["TZ"] = saved
  }
}


describe("parseRetryAfter", () => {
  it.each([
    ["2", 2000],
    ["1.5", 1500],
    ["0", 0],
    ["120", 120_000],
    [" 3 ", 3000]
  ])("delay-seconds %j → %i ms", (value, ms) => {
    expect(parseRetryAfter(value, 0)).toEqual(Option.some(ms))
  })

  it("an HTTP-date 3 s in the future → 3000 ms", () => {
    expect(parseRetryAfter(DATE, DATE_MS - 3000)).toEqual(Option.some(3000))
  })

  it("an HTTP-date in the past → 0 ms (no negative wait)", () => {
    expect(parseRetryAfter(DATE, DATE_MS + 10_000)).toEqual(Option.some(0))
  })

  it("the obsolete RFC 850 date form is read too", () => {
    expect(parseRetryAfter("Wednesday, 21-Oct-15 07:28:00 GMT", DATE_MS - 3000)).toEqual(Option.some(3000))
  })

  it.each(["soon", "-5", "", "   ", "1x", "NaN", "Infinity", "5e3", "0x10", "2 s"])("garbage %j → none", (value) => {
    expect(parseRetryAfter(value, DATE_MS)).toEqual(Option.none())
  })

  // BUG: V8's lenient legacy Date.parse turns these into dates in 2001, so a garbage Retry-After
  // becomes a 0 ms hint (a 0 ms cooldown when honoured) instead of no hint (base_ms).
  it.each(["soon 5", "wait 10", "retry 2", "x 1"])("garbage that Date.parse accepts, %j → none", (value) => {
    expect(parseRetryAfter(value, DATE_MS)).toEqual(Option.none())
  })

  // RFC 9110's asctime form is GMT, whatever the process's local zone (Date.parse would use the local one).
  // Switching TZ only takes effect in a forked worker; under worker threads the check runs in the local zone.
  it("the asctime date form is GMT whatever the process time zone", () => {
    withTimeZone("America/New_York", () => {
      expect(parseRetryAfter("Wed Oct 21 07:28:00 2015", DATE_MS - 3000)).toEqual(Option.some(3000))
    })
  })
})

describe("parseRetryAfterMs", () => {
  it.each([
    ["2000", 2000],
    ["0", 0],
    ["1.2", 2] // rounded up: never come back early
  ])("%j → %i ms", (value, ms) => {
    expect(parseRetryAfterMs(value)).toEqual(Option.some(ms))
  })

  it.each(["soon", "-5", "", "1x", "NaN"])("garbage %j → none", (value) => {
    expect(parseRetryAfterMs(value)).toEqual(Option.none())
  })
})

describe("parseResetDuration (x-ratelimit-reset-requests)", () => {
  it.each([
    ["1m30s", 90_000],
    ["6m0s", 360_000],
    ["250ms", 250],
    ["2.5s", 2500],
    ["1h", 3_600_000],
    ["1h2m3s", 3_723_000],
    ["2m59.56s", 179_560],
    ["0s", 0]
  ])("%j → %i ms", (value, ms) => {
    expect(parseResetDuration(value)).toEqual(Option.some(ms))
  })

  it.each(["soon", "-5", "", "1x", "NaN", "5", "1m30", "s", "1.5.2s"])("garbage %j → none", (value) => {
    expect(parseResetDuration(value)).toEqual(Option.none())
  })
})

describe("retryHintMs", () => {
  const now = DATE_MS - 3000

  it.each<[string, HeaderBag, Option.Option<number>]>([
    ["no header", {}, Option.none()],
    ["retry-after seconds", { "retry-after": "2" }, Option.some(2000)],
    ["retry-after HTTP-date", { "retry-after": DATE }, Option.some(3000)],
    ["retry-after-ms", { "retry-after-ms": "750" }, Option.some(750)],
    ["x-ratelimit-reset-requests", { "x-ratelimit-reset-requests": "1m30s" }, Option.some(90_000)],
    [
      "retry-after-ms wins over retry-after and reset-requests",
      { "retry-after-ms": "750", "retry-after": "2", "x-ratelimit-reset-requests": "1m30s" },
      Option.some(750)
    ],
    ["retry-after wins over reset-requests", { "retry-after": "2", "x-ratelimit-reset-requests": "1m30s" }, Option.some(2000)],
    [
      "garbage retry-after-ms falls through to retry-after",
      { "retry-after-ms": "soon", "retry-after": "2", "x-ratelimit-reset-requests": "1m30s" },
      Option.some(2000)
    ],
    [
      "garbage retry-after falls through to reset-requests",
      { "retry-after": "soon", "x-ratelimit-reset-requests": "250ms" },
      Option.some(250)
    ],
    ["all garbage → none", { "retry-after-ms": "-5", "retry-after": "NaN", "x-ratelimit-reset-requests": "1x" }, Option.none()],
    ["a lone garbage reset-requests → none", { "x-ratelimit-reset-requests": "soon" }, Option.none()],
    ["array value: the first one counts", { "retry-after": ["3", "9"] }, Option.some(3000)],
    ["array retry-after-ms", { "retry-after-ms": ["100", "200"] }, Option.some(100)],
    ["empty array → none", { "retry-after": [] }, Option.none()],
    ["undefined value → none", { "retry-after": undefined }, Option.none()],
    ["upper-case names are not read (headers arrive lower-cased)", { "Retry-After": "2" }, Option.none()]
  ])("%s", (_, headers, expected) => {
    expect(retryHintMs(headers, now)).toEqual(expected)
  })
})

describe("garbage Retry-After falls through to the next header", () => {
  it("Retry-After: \"wait 10\" is ignored, x-ratelimit-reset-requests: 250ms is used", () => {
    expect(retryHintMs({ "retry-after": "wait 10", "x-ratelimit-reset-requests": "250ms" }, DATE_MS)).toEqual(Option.some(250))
  })
})

describe("decimal hints are exact (no floating-point overshoot)", () => {
  // 4.03 × 1000 = 4030.0000000000005 in IEEE-754, which Math.ceil turns into 4031.
  it("Retry-After: 4.03 → 4030 ms", () => {
    expect(parseRetryAfter("4.03", 0)).toEqual(Option.some(4030))
  })
  it("x-ratelimit-reset-requests: 8.05s → 8050 ms", () => {
    expect(parseResetDuration("8.05s")).toEqual(Option.some(8050))
  })
})
