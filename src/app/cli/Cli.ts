/**
 * `sidecar` commands: `backends list|add|disable|enable|remove` and `usage`, over the admin API
 * (`--url`) or storage directly. Exit codes: 0 ok, 1 error, 2 usage error. Keys come from env only.
 */
import { type AdminClient, adminBaseUrl, httpClient } from "./AdminClient.js"
import { CliError, numeric, type ParsedArgs, parseArgs, required, usageError, value } from "./Args.js"
import type { StorageLoader } from "./DirectClient.js"
import { backendsTable, usageTable } from "./Tables.js"

export interface CliIo {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
}

export interface CliOptions {
  /** How direct mode gets its storage Layer (default: the SQLite adapter). */
  readonly loadStorage?: StorageLoader
}

export const HELP = `Usage: sidecar <command> [options]

Commands:
  backends list                      backends with their live state
  backends add --id ID --pool POOL --base-url URL [--api-key-env NAME] [--rpm N]
               [--model CANONICAL[=UPSTREAM]]... [--timeout-ms N] [--first-token-timeout-ms N]
               [--stream-idle-timeout-ms N] [--prefill-continuation] [--disabled]
                                     the key is read from the environment variable NAME
  backends disable ID                stop routing to a backend
  backends enable ID                 route to it again
  backends remove ID                 delete a backend
  usage [--since 24h] [--until now] [--by backend|model|pool|phase]
                                     upstream attempts, tokens and cost; ISO-8601 or 30m/24h/7d ago

Where:
  --url URL      a running Sidecar's admin API, e.g. http://127.0.0.1:8080; the token comes from
                 SIDECAR_ADMIN_TOKEN (or --token, visible to other users in the process list)
  (no --url)     the database of the config file (SIDECAR_CONFIG, default ./sidecar.yaml; SIDECAR_DB),
                 which must exist; live state (cooldowns, rate window) is then not shown
  --json         print the admin API's JSON instead of a table
  -h, --help     this help
`

const GLOBAL_VALUES = ["url", "token"]
const GLOBAL_SWITCHES = ["help", "json"]
const ADD_VALUES = ["id", "pool", "base-url", "api-key-env", "api-key", "rpm", "model", "timeout-ms", "first-token-timeout-ms", "stream-idle-timeout-ms"]
const ADD_SWITCHES = ["prefill-continuation", "disabled"]
const USAGE_VALUES = ["since", "until", "by"]

const spec = {
  values: [...GLOBAL_VALUES, ...ADD_VALUES, ...USAGE_VALUES],
  repeatable: ["model"],
  switches: [...GLOBAL_SWITCHES, ...ADD_SWITCHES]
}

/** Refuses options that do not belong to the command. */
const onlyOptions = (args: ParsedArgs, command: string, values: ReadonlyArray<string>, switches: ReadonlyArray<string> = []) => {
  for (const name of args.values.keys()) {
    if (!GLOBAL_VALUES.includes(name) && !values.includes(name)) throw usageError(`--${name} is not an option of \`${command}\``)
  }
  for (const name of args.switches) {
    if (!GLOBAL_SWITCHES.includes(name) && !switches.includes(name)) throw usageError(`--${name} is not an option of \`${command}\``)
  }
}

const models = (specs: ReadonlyArray<string>): Record<string, { upstream?: string }> | undefined => {
  if (specs.length === 0) return undefined
  const map: Record<string, { upstream?: string }> = {}
  for (const s of specs) {
    const eq = s.indexOf("=")
    const canonical = (eq < 0 ? s : s.slice(0, eq)).trim()
    const upstream = eq < 0 ? undefined : s.slice(eq + 1).trim()
    if (canonical === "" || upstream === "") throw usageError(`--model: expected CANONICAL or CANONICAL=UPSTREAM, got ${JSON.stringify(s)}`)
    if (Object.prototype.hasOwnProperty.call(map, canonical)) throw usageError(`--model: ${JSON.stringify(canonical)} given twice`)
    map[canonical] = upstream === undefined ? {} : { upstream }
  }
  return map
}

/** The POST body for `backends add`, in the YAML names; the key only from the named variable. */
export const addBody = (args: ParsedArgs, env: Record<string, string | undefined>): Record<string, unknown> => {
  if (args.values.has("api-key")) {
    throw usageError("--api-key is refused: a key on the command line ends up in shell history and the process list. Use --api-key-env NAME")
  }
  const body: Record<string, unknown> = { id: required(args, "id"), pool: required(args, "pool"), base_url: required(args, "base-url") }
  const keyVar = value(args, "api-key-env")
  if (keyVar !== undefined) {
    const key = env[keyVar]
    if (key === undefined || key === "") throw new CliError(`--api-key-env: the environment variable ${keyVar} is not set`)
    body["api_key"] = key
  }
  const numbers: Array<[string, string]> = [["rpm", "rpm"], ["timeout-ms", "timeout_ms"], ["first-token-timeout-ms", "first_token_timeout_ms"], ["stream-idle-timeout-ms", "stream_idle_timeout_ms"]]
  for (const [flag, field] of numbers) {
    const n = numeric(args, flag)
    if (n !== undefined) body[field] = n
  }
  const m = models(args.values.get("model") ?? [])
  if (m !== undefined) body["models"] = m
  if (args.switches.has("prefill-continuation")) body["prefill_continuation"] = true
  if (args.switches.has("disabled")) body["enabled"] = false
  return body
}

const connect = (args: ParsedArgs, env: Record<string, string | undefined>, options: CliOptions): Promise<AdminClient> => {
  const url = value(args, "url")
  if (url === undefined) {
    if (args.values.has("token")) throw usageError("--token needs --url (without --url the CLI works on the database directly)")
    // Loaded only here: the --url path stays free of Effect, the config loader and storage.
    return import("./DirectClient.js").then(({ directClient }) =>
      options.loadStorage === undefined ? directClient(env) : directClient(env, options.loadStorage))
  }
  const envToken = env["SIDECAR_ADMIN_TOKEN"]
  return Promise.resolve(httpClient(adminBaseUrl(url), value(args, "token") ?? (envToken === "" ? undefined : envToken)))
}

const oneId = (args: ParsedArgs, command: string): string => {
  const rest = args.positionals.slice(2)
  if (rest.length !== 1) throw usageError(`\`${command}\` takes one backend id`)
  return rest[0]!
}

/** Runs one invocation; resolves to the exit code. Nothing secret is ever printed. */
export const runCli = async (
  argv: ReadonlyArray<string>,
  env: Record<string, string | undefined>,
  io: CliIo,
  options: CliOptions = {}
): Promise<number> => {
  let client: AdminClient | undefined
  try {
    const args = parseArgs(argv, spec)
    if (args.switches.has("help")) {
      io.out(HELP.trimEnd())
      return 0
    }
    const [group, action] = args.positionals
    if (group === undefined) {
      io.err(HELP.trimEnd())
      return 2
    }
    const json = args.switches.has("json")
    const print = (data: unknown, lines: () => ReadonlyArray<string>) =>
      json ? io.out(JSON.stringify(data, null, 2)) : lines().forEach((l) => io.out(l))
    if (group === "usage") {
      onlyOptions(args, "usage", USAGE_VALUES)
      if (args.positionals.length > 1) throw usageError("`usage` takes no arguments")
      client = await connect(args, env, options)
      const params = { since: value(args, "since"), until: value(args, "until"), group_by: value(args, "by") }
      const report = await client.usage(Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)))
      print(report, () => usageTable(report))
      return 0
    }
    if (group !== "backends") throw usageError(`unknown command ${JSON.stringify(group)} (see sidecar --help)`)
    const command = `backends ${action ?? ""}`.trim()
    switch (action) {
      case "list": {
        onlyOptions(args, command, [])
        if (args.positionals.length > 2) throw usageError("`backends list` takes no arguments")
        client = await connect(args, env, options)
        const backends = await client.listBackends()
        print({ backends }, () => backendsTable(backends))
        return 0
      }
      case "add": {
        onlyOptions(args, command, ADD_VALUES, ADD_SWITCHES)
        if (args.positionals.length > 2) throw usageError("`backends add` takes options only (--id, --pool, --base-url, …)")
        const body = addBody(args, env)
        client = await connect(args, env, options)
        const created = await client.createBackend(body)
        print(created, () => [`Added backend ${created.id} to pool ${created.pool}.`, "", ...backendsTable([created])])
        return 0
      }
      case "disable":
      case "enable": {
        onlyOptions(args, command, [])
        const id = oneId(args, command)
        client = await connect(args, env, options)
        const updated = await client.patchBackend(id, { enabled: action === "enable" })
        print(updated, () => [`${action === "enable" ? "Enabled" : "Disabled"} backend ${updated.id}.`])
        return 0
      }
      case "remove": {
        onlyOptions(args, command, [])
        const id = oneId(args, command)
        client = await connect(args, env, options)
        await client.removeBackend(id)
        print({ removed: id }, () => [`Removed backend ${id}.`])
        return 0
      }
      default:
        throw usageError(action === undefined
          ? "`backends` needs a subcommand: list, add, disable, enable or remove"
          : `unknown subcommand \`backends ${action}\` (list, add, disable, enable, remove)`)
    }
  } catch (e) {
    if (e instanceof CliError) {
      io.err(`sidecar: ${e.message}`)
      return e.exitCode
    }
    io.err(`sidecar: unexpected error: ${e instanceof Error ? e.message : String(e)}`)
    return 1
  } finally {
    if (client !== undefined) await client.close().catch(() => undefined)
  }
}
