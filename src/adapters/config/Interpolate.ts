/**
 * `${VAR}` substitution in the string values of a parsed YAML document, from an env record
 * passed in (never process.env). Missing variables are collected, not thrown, with their paths.
 */
import { isMap, isPair, isScalar, isSeq, Scalar, type Document } from "yaml"
import { isSecretPath, type Path, type Problem } from "./Problems.js"

export type Env = Readonly<Record<string, string | undefined>>

/** `${NAME}`, or the escape `$${` for a literal `${`. */
const reference = /\$\$\{|\$\{([^}]*)\}/g
const validName = /^[A-Za-z_][A-Za-z0-9_]*$/
const wholeReference = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/
const numeric = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/

/**
 * What an unquoted scalar that is exactly one `${VAR}` becomes: a number or boolean when the
 * variable's text is one (so `rpm: ${NIM_RPM}` works), else the text. Secrets stay text.
 */
const typed = (text: string): string | number | boolean => {
  if (numeric.test(text)) return Number(text)
  if (text === "true" || text === "false") return text === "true"
  return text
}

const substitute = (text: string, env: Env, path: Path, problems: Array<Problem>): string =>
  text.replace(reference, (match, name: string | undefined) => {
    if (name === undefined) return "${"
    if (!validName.test(name)) {
      problems.push({ path, message: `unsupported reference ${match} (only \${NAME} is supported)` })
      return match
    }
    const value = env[name]
    if (value === undefined) {
      problems.push({ path, message: `environment variable ${name} is not set` })
      return match
    }
    return value
  })

const keyOf = (key: unknown): string => (isScalar(key) ? String(key.value) : String(key))

/**
 * Replaces every `${VAR}` in the document's string scalars in place, and returns the problems
 * (missing or malformed references), each at the path of its value. Map keys are not touched.
 */
export const interpolate = (doc: Document, env: Env): Array<Problem> => {
  const problems: Array<Problem> = []
  const visit = (node: unknown, path: Path): void => {
    if (isMap(node)) {
      for (const pair of node.items) if (isPair(pair)) visit(pair.value, [...path, keyOf(pair.key)])
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, [...path, i]))
    } else if (isScalar(node) && typeof node.value === "string" && node.value.includes("${")) {
      const before = problems.length
      const text = substitute(node.value, env, path, problems)
      const resolved = problems.length === before
      node.value = resolved && node.type === Scalar.PLAIN && wholeReference.test(node.value) && !isSecretPath(path)
        ? typed(text)
        : text
    }
  }
  visit(doc.contents, [])
  return problems
}
