/**
 * Command-line parsing for `sidecar`: positionals, `--flag value` / `--flag=value` options
 * (repeatable where declared) and boolean switches. Problems are usage errors (exit 2).
 */

/** Something wrong with how the CLI was invoked, or with what it was asked to do: printed, then exit with `exitCode`. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: 1 | 2 = 1) {
    super(message)
  }
}

export const usageError = (message: string) => new CliError(message, 2)

export interface FlagSpec {
  /** Options taking a value. */
  readonly values: ReadonlyArray<string>
  /** Value options that may be given several times. */
  readonly repeatable?: ReadonlyArray<string>
  /** Switches without a value. */
  readonly switches: ReadonlyArray<string>
}

export interface ParsedArgs {
  readonly positionals: ReadonlyArray<string>
  readonly values: ReadonlyMap<string, ReadonlyArray<string>>
  readonly switches: ReadonlySet<string>
}

/** Parses `argv` (without `node` and the script) against the allowed flags. `--` ends options. */
export const parseArgs = (argv: ReadonlyArray<string>, spec: FlagSpec): ParsedArgs => {
  const positionals: Array<string> = []
  const values = new Map<string, Array<string>>()
  const switches = new Set<string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (arg === "-h") {
      switches.add("help")
      continue
    }
    if (!arg.startsWith("--") || arg === "--") {
      positionals.push(arg)
      continue
    }
    const eq = arg.indexOf("=")
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
    if (spec.switches.includes(name)) {
      if (eq >= 0) throw usageError(`--${name} takes no value`)
      switches.add(name)
      continue
    }
    if (!spec.values.includes(name)) throw usageError(`unknown option --${name}`)
    let value: string
    if (eq >= 0) value = arg.slice(eq + 1)
    else {
      const next = argv[i + 1]
      if (next === undefined || next.startsWith("--")) throw usageError(`--${name} needs a value`)
      value = next
      i++
    }
    const seen = values.get(name)
    if (seen === undefined) values.set(name, [value])
    else if (spec.repeatable?.includes(name) === true) seen.push(value)
    else throw usageError(`--${name} given more than once`)
  }
  return { positionals, values, switches }
}

/** The single value of an option, if given. */
export const value = (args: ParsedArgs, name: string): string | undefined => args.values.get(name)?.[0]

/** A required option's value. */
export const required = (args: ParsedArgs, name: string): string => {
  const v = value(args, name)
  if (v === undefined || v === "") throw usageError(`--${name} is required`)
  return v
}

/** An option's value as a number (range checks are the server's, so messages match the API's). */
export const numeric = (args: ParsedArgs, name: string): number | undefined => {
  const v = value(args, name)
  if (v === undefined) return undefined
  const n = Number(v)
  if (v.trim() === "" || !Number.isFinite(n)) throw usageError(`--${name}: expected a number, got ${JSON.stringify(v)}`)
  return n
}
