/**
 * Plain-text tables for the CLI: columns padded to their widest cell, numbers right-aligned.
 * Backends show their key as `…abcd` only (as the admin API gives it); usage ends with a total row.
 */
import type { BackendJson } from "../../adapters/http/AdminBackends.js"
import type { UsageJson, UsageTotalsJson } from "../../adapters/http/AdminUsage.js"

export type Align = "left" | "right"

/** Lines of a table: header, then rows; cells separated by two spaces, no trailing blanks. */
export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, align: ReadonlyArray<Align> = []): Array<string> => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => (align[i] === "right" ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [line(headers), ...rows.map(line)]
}

/** `2024-05-01T12:00:00.000Z` → `2024-05-01 12:00:00Z`. */
const instant = (iso: string) => iso.replace("T", " ").replace(/\.\d{3}Z$/, "Z")

const stateText = (b: BackendJson): string => {
  const s = b.state
  if (s === null) return "-"
  const streaks = [
    s.consecutive_429s > 0 ? `${s.consecutive_429s}x429` : undefined,
    s.consecutive_errors > 0 ? `${s.consecutive_errors} errors` : undefined
  ].filter((x) => x !== undefined)
  const base = s.cooling_until === null
    ? "ok"
    : `cooling until ${instant(s.cooling_until)}${s.cooldown_reason === null ? "" : ` (${s.cooldown_reason})`}`
  return streaks.length === 0 ? base : `${base}, ${streaks.join(", ")}`
}

const modelsText = (b: BackendJson): string => {
  if (b.models === null) return "*"
  const entries = Object.entries(b.models)
  if (entries.length === 0) return "-"
  return entries.map(([name, r]) => (r.upstream === null || r.upstream === name ? name : `${name}=${r.upstream}`)).join(", ")
}

export const backendsTable = (backends: ReadonlyArray<BackendJson>): Array<string> =>
  backends.length === 0
    ? ["No backends."]
    : table(
      ["ID", "POOL", "ENABLED", "RPM", "LEFT", "STATE", "KEY", "MODELS", "BASE_URL"],
      backends.map((b) => [
        b.id,
        b.pool,
        b.enabled ? "yes" : "no",
        b.rpm === null ? "-" : String(b.rpm),
        b.state?.rate_window_remaining == null ? "-" : String(b.state.rate_window_remaining),
        stateText(b),
        b.api_key ?? "-",
        modelsText(b),
        b.base_url
      ]),
      ["left", "left", "left", "right", "right"]
    )

const usd = (n: number) => (n !== 0 && Math.abs(n) < 0.0001 ? n.toPrecision(2) : n.toFixed(4))

const totalsCells = (t: UsageTotalsJson) => [
  String(t.requests),
  String(t.errors),
  String(t.prompt_tokens),
  String(t.completion_tokens),
  usd(t.cost_usd)
]

export const usageTable = (u: UsageJson): Array<string> => {
  const title = `Usage ${instant(u.since)} to ${instant(u.until)}, by ${u.group_by} (counts are upstream attempts)`
  const rows = u.rows.map((r) => [String(r[u.group_by] ?? ""), ...totalsCells(r)])
  return [
    title,
    "",
    ...table(
      [u.group_by.toUpperCase(), "REQUESTS", "ERRORS", "PROMPT_TOKENS", "COMPLETION_TOKENS", "COST_USD"],
      [...rows, ["TOTAL", ...totalsCells(u.total)]],
      ["left", "right", "right", "right", "right", "right"]
    )
  ]
}
