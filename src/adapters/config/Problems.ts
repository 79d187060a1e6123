/**
 * Turns a config ParseError into readable `path: message` problems in the file's own names
 * (`backends[2].pool`, `cooldown.base_ms`), and keeps secret values out of every message.
 */
import { ParseResult } from "effect"

export type Path = ReadonlyArray<PropertyKey>

export interface Problem {
  readonly path: Path
  readonly message: string
}

const plainKey = /^[A-Za-z_][A-Za-z0-9_-]*$/

/** `["backends", 2, "pool"]` → `backends[2].pool`; odd keys are quoted: `models["meta/llama"]`. */
export const renderPath = (path: Path): string =>
  path.reduce<string>((acc, seg) => {
    if (typeof seg === "number") return `${acc}[${seg}]`
    const key = String(seg)
    if (!plainKey.test(key)) return `${acc}[${JSON.stringify(key)}]`
    return acc === "" ? key : `${acc}.${key}`
  }, "")

export const renderProblem = (p: Problem): string =>
  p.path.length === 0 ? `top level: ${p.message}` : `${renderPath(p.path)}: ${p.message}`

/** Fields whose values are secrets: `backends[i].api_key`, `security.admin_token`, `security.proxy_keys[...]`. */
export const isSecretPath = (path: Path): boolean =>
  (path[0] === "backends" && typeof path[1] === "number" && path[2] === "api_key") ||
  (path[0] === "security" && (path[1] === "admin_token" || path[1] === "proxy_keys"))

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The raw value at a path of the file tree, or undefined. */
export const valueAt = (tree: unknown, path: Path): unknown =>
  path.reduce<unknown>((node, seg) => {
    if (Array.isArray(node) && typeof seg === "number") return node[seg]
    if (isRecord(node) && typeof seg === "string" && Object.prototype.hasOwnProperty.call(node, seg)) return node[seg]
    return undefined
  }, tree)

const MIN_SCRUBBED = 4

/** Every scalar found at a secret path of the tree, as text (to scrub from messages). */
export const secretValues = (tree: unknown): ReadonlyArray<string> => {
  const found: Array<string> = []
  const collect = (u: unknown): void => {
    if (typeof u === "string" || typeof u === "number" || typeof u === "bigint") found.push(String(u))
    else if (Array.isArray(u)) u.forEach(collect)
    else if (isRecord(u)) Object.values(u).forEach(collect)
  }
  const security = valueAt(tree, ["security"])
  if (isRecord(security)) {
    collect(security["admin_token"])
    collect(security["proxy_keys"])
  }
  const backends = valueAt(tree, ["backends"])
  if (Array.isArray(backends)) backends.forEach((b) => isRecord(b) && collect(b["api_key"]))
  // Very short "secrets" are not scrubbed: they would mangle unrelated words and numbers.
  return found.filter((s) => s.length >= MIN_SCRUBBED).sort((a, b) => b.length - a.length)
}

/** Replaces every occurrence of a secret in a message. */
export const scrub = (message: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((m, s) => m.split(s).join("<redacted>"), message)

/** A short, non-revealing description of a raw value for "got …". */
const describe = (u: unknown): string => {
  if (u === undefined) return "nothing"
  if (u === null) return "an empty value"
  if (Array.isArray(u)) return "a list"
  if (typeof u === "object") return "a mapping"
  if (typeof u === "string") return JSON.stringify(u.length > 60 ? `${u.slice(0, 57)}...` : u)
  return String(u)
}

const got = (tree: unknown, path: Path): string => {
  const value = valueAt(tree, path)
  if (!isSecretPath(path)) return `, got ${describe(value)}`
  if (value === "") return ""
  return value === null || value === undefined ? `, got ${describe(value)}` : " (value not shown: secret)"
}

/** Schema's names for what it expected → words an operator reads. */
const expectedKind = (expected: string): string => {
  if (expected === "string") return "a string"
  if (expected === "number") return "a number"
  if (expected === "boolean") return "true or false"
  if (expected.startsWith("ReadonlyArray<") || expected.startsWith("readonly [")) return "a list"
  if (expected.startsWith("{") || expected.includes("(Encoded side)")) return "a mapping"
  return expected.length <= 60 ? expected : "a valid value"
}

const expectedActual = /^Expected ([\s\S]*?), actual [\s\S]*$/
const literalExpected = /^Expected ("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*|true|false|null), actual /
const quoted = /"((?:[^"\\]|\\.)*)"/g

const unexpectedMessage = (message: string): string => {
  const allowed = [...message.matchAll(quoted)].map((m) => m[1])
  return allowed.length === 0 ? "unknown key" : `unknown key (allowed: ${allowed.join(", ")})`
}

/**
 * The problems of a decode error, one per path and message, in the file's names. `tree` is the
 * input that was decoded (for "got …" and to know which values are secrets).
 */
export const fromParseError = (error: ParseResult.ParseError, tree: unknown): Array<Problem> => {
  // Literal alternatives (`Expected "info", actual …`, one per member) are gathered per path.
  type Entry = Problem | { readonly path: Path; readonly options: Array<string> }
  const entries: Array<Entry> = []
  const literals = new Map<string, Array<string>>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const { path, message } = issue
    // An optional field is `undefined | X`: the `undefined` alternative's failure is noise.
    if (message.startsWith("Expected undefined, actual ")) continue
    const literal = issue._tag === "Type" ? literalExpected.exec(message) : null
    if (literal !== null) {
      const option = literal[1]!.replace(/^"(.*)"$/, "$1")
      const options = literals.get(renderPath(path))
      if (options !== undefined) options.push(option)
      else {
        const fresh = [option]
        literals.set(renderPath(path), fresh)
        entries.push({ path, options: fresh })
      }
      continue
    }
    switch (issue._tag) {
      case "Missing": {
        const last = path[path.length - 1]
        entries.push(
          typeof last === "number"
            ? { path: path.slice(0, -1), message: "must not be empty" }
            : { path, message: "is required" }
        )
        break
      }
      case "Unexpected":
        entries.push({ path, message: unexpectedMessage(message) })
        break
      default: {
        const m = expectedActual.exec(message)
        const value = valueAt(tree, path)
        if (m !== null) entries.push({ path, message: `expected ${expectedKind(m[1]!)}${got(tree, path)}` })
        else if (issue._tag === "Refinement" && (value === null || typeof value !== "object")) {
          entries.push({ path, message: `${message}${got(tree, path)}` })
        } else entries.push({ path, message })
      }
    }
  }
  return entries.map((e) => {
    if ("message" in e) return e
    const list = e.options.join(", ")
    return { path: e.path, message: `${e.options.length === 1 ? "must be" : "must be one of:"} ${list}${got(tree, e.path)}` }
  })
}
