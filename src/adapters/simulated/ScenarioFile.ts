/**
 * Reads a scenario YAML file, applies `--set path=value` overrides, and decodes it; every problem
 * is reported with the field it concerns.
 */
import { Data, Either } from "effect"
import { readFileSync } from "node:fs"
import { parseDocument } from "yaml"
import { decodeScenario, type Scenario } from "./ScenarioSchema.js"

export class ScenarioInvalid extends Data.TaggedError("ScenarioInvalid")<{
  readonly source: string
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return `Invalid scenario ${this.source}:\n${this.problems.map((p) => `  - ${p}`).join("\n")}`
  }
}

/** Sets `value` (YAML-parsed, so `6`, `true`, `[a, b]` work) at a dotted path like `primary_wait.max_retries`. */
const setPath = (root: Record<string, unknown>, path: string, raw: string) => {
  const keys = path.split(".")
  let node: Record<string, unknown> = root
  for (const k of keys.slice(0, -1)) {
    const next = node[k]
    node[k] = typeof next === "object" && next !== null ? next : {}
    node = node[k] as Record<string, unknown>
  }
  node[keys[keys.length - 1]!] = parseDocument(raw).toJS()
}

/**
 * Policy overrides apply under `policy.` unless the path already names a top-level key
 * (`primary_wait.max_retries=6` and `policy.primary_wait.max_retries=6` are the same).
 */
const policyBlocks = new Set(["routing", "cooldown", "primary_wait", "emergency"])

export const parseScenario = (
  text: string,
  source: string,
  overrides: ReadonlyArray<string> = []
): Either.Either<Scenario, ScenarioInvalid> => {
  const doc = parseDocument(text)
  if (doc.errors.length > 0) {
    return Either.left(new ScenarioInvalid({ source, problems: doc.errors.map((e) => e.message) }))
  }
  const input = doc.toJS() as unknown
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return Either.left(new ScenarioInvalid({ source, problems: ["(top level): expected a mapping"] }))
  }
  const root = input as Record<string, unknown>
  for (const o of overrides) {
    const eq = o.indexOf("=")
    if (eq <= 0) return Either.left(new ScenarioInvalid({ source, problems: [`--set ${o}: expected path=value`] }))
    const path = o.slice(0, eq)
    setPath(root, policyBlocks.has(path.split(".")[0]!) ? `policy.${path}` : path, o.slice(eq + 1))
  }
  return decodeScenario(root).pipe(Either.mapLeft((problems) => new ScenarioInvalid({ source, problems })))
}

export const loadScenario = (path: string, overrides: ReadonlyArray<string> = []) =>
  parseScenario(readFileSync(path, "utf8"), path, overrides)
