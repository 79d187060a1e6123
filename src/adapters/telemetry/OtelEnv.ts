/**
 * The standard OTEL_* environment variables, read from a record passed in (never process.env),
 * into what the metrics and trace exporters need. Pure; bad values are reported, then defaulted.
 */

export type Env = Readonly<Record<string, string | undefined>>

/** What the variable asks for; the exporters in this build all send `http/json` (see OtlpExporters). */
export type OtlpProtocol = "http/protobuf" | "http/json" | "grpc"

export interface OtlpTarget {
  /** The full URL POSTed to (`…/v1/metrics`, `…/v1/traces`). */
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly protocol: OtlpProtocol
  readonly timeoutMs: number
}

export interface OtlpMetricsSettings extends OtlpTarget {
  readonly intervalMs: number
  readonly exportTimeoutMs: number
}

export type Sampler =
  | { readonly _tag: "AlwaysOn" }
  | { readonly _tag: "AlwaysOff" }
  | { readonly _tag: "Ratio"; readonly ratio: number }

export interface OtlpTracesSettings extends OtlpTarget {
  /** Root decision; `parentBased` defers to a sampled/unsampled parent (a client traceparent). */
  readonly sampler: Sampler
  readonly parentBased: boolean
  readonly scheduledDelayMs: number
  readonly exportTimeoutMs: number
  readonly maxQueueSize: number
  readonly maxExportBatchSize: number
}

export interface ResourceSettings {
  readonly serviceName: string
  readonly attributes: Readonly<Record<string, string>>
}

export interface TelemetrySettings {
  readonly resource: ResourceSettings
  /** Serve Prometheus text at GET /metrics. */
  readonly prometheus: boolean
  readonly metrics: OtlpMetricsSettings | undefined
  readonly traces: OtlpTracesSettings | undefined
  /** Invalid values that were ignored (defaults used instead), one line each. */
  readonly problems: ReadonlyArray<string>
}

const DEFAULT_ENDPOINT = "http://localhost:4318"

const value = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim()
  return v === undefined || v === "" ? undefined : v
}

const decode = (s: string) => {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** `k1=v1,k2=v2` (W3C baggage-like, values percent-decoded), as in OTEL_RESOURCE_ATTRIBUTES and *_HEADERS. */
export const parseKeyValues = (text: string | undefined, problems: Array<string>, name: string): Record<string, string> => {
  const out: Record<string, string> = {}
  if (text === undefined) return out
  const parts = text.split(",")
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? ""
    if (part.trim() === "") continue
    const eq = part.indexOf("=")
    const key = eq > 0 ? decode(part.slice(0, eq).trim()) : ""
    if (key === "") {
      // Not quoted: header values are often credentials.
      problems.push(`${name}: ignored entry ${i + 1} (expected key=value)`)
      continue
    }
    out[key] = decode(part.slice(eq + 1).trim())
  }
  return out
}

const reader = (env: Env, problems: Array<string>) => {
  const int = (name: string, fallback: number, min = 0): number => {
    const v = value(env, name)
    if (v === undefined) return fallback
    const n = /^\d+$/.test(v) ? Number(v) : NaN
    if (Number.isSafeInteger(n) && n >= min) return n
    problems.push(`${name}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}; using ${fallback}`)
    return fallback
  }
  /** The name of the signal-specific variable if set, else of the general one. */
  const either = (signal: string, suffix: string) =>
    value(env, `OTEL_EXPORTER_OTLP_${signal}_${suffix}`) !== undefined
      ? `OTEL_EXPORTER_OTLP_${signal}_${suffix}`
      : `OTEL_EXPORTER_OTLP_${suffix}`
  const target = (signal: "METRICS" | "TRACES", path: string): OtlpTarget => {
    const specific = value(env, `OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`)
    const base = value(env, "OTEL_EXPORTER_OTLP_ENDPOINT") ?? DEFAULT_ENDPOINT
    const url = specific ?? `${base.replace(/\/+$/, "")}/${path}`
    const protocolName = either(signal, "PROTOCOL")
    const raw = value(env, protocolName) ?? "http/protobuf"
    let protocol: OtlpProtocol = "http/protobuf"
    if (raw === "http/json" || raw === "http/protobuf" || raw === "grpc") protocol = raw
    else problems.push(`${protocolName}: unknown protocol ${JSON.stringify(raw)}; using http/protobuf`)
    const headers = {
      ...parseKeyValues(value(env, "OTEL_EXPORTER_OTLP_HEADERS"), problems, "OTEL_EXPORTER_OTLP_HEADERS"),
      ...parseKeyValues(value(env, `OTEL_EXPORTER_OTLP_${signal}_HEADERS`), problems, `OTEL_EXPORTER_OTLP_${signal}_HEADERS`)
    }
    return { url, headers, protocol, timeoutMs: int(either(signal, "TIMEOUT"), 10_000, 1) }
  }
  return { int, target }
}

/** `OTEL_{METRICS,TRACES}_EXPORTER`: a comma list (`otlp`, `prometheus`, `none`), or undefined when unset. */
const exporters = (env: Env, name: string): ReadonlySet<string> | undefined => {
  const v = value(env, name)
  return v === undefined ? undefined : new Set(v.split(",").map((s) => s.trim().toLowerCase()))
}

const sampler = (env: Env, problems: Array<string>): { sampler: Sampler; parentBased: boolean } => {
  const name = (value(env, "OTEL_TRACES_SAMPLER") ?? "parentbased_always_on").toLowerCase()
  const parentBased = name.startsWith("parentbased_")
  const root = parentBased ? name.slice("parentbased_".length) : name
  if (root === "always_on") return { sampler: { _tag: "AlwaysOn" }, parentBased }
  if (root === "always_off") return { sampler: { _tag: "AlwaysOff" }, parentBased }
  if (root === "traceidratio") {
    const arg = value(env, "OTEL_TRACES_SAMPLER_ARG")
    const ratio = arg === undefined ? 1 : Number(arg)
    if (Number.isFinite(ratio) && ratio >= 0 && ratio <= 1) return { sampler: { _tag: "Ratio", ratio }, parentBased }
    problems.push(`OTEL_TRACES_SAMPLER_ARG: expected a number in [0, 1], got ${JSON.stringify(arg)}; using 1`)
    return { sampler: { _tag: "Ratio", ratio: 1 }, parentBased }
  }
  problems.push(`OTEL_TRACES_SAMPLER: unsupported sampler ${JSON.stringify(name)}; using parentbased_always_on`)
  return { sampler: { _tag: "AlwaysOn" }, parentBased: true }
}

/**
 * Reads the telemetry settings. Prometheus is on unless OTEL_METRICS_EXPORTER is set without
 * `prometheus`; OTLP metrics/traces are on when an endpoint variable is set (or the *_EXPORTER
 * list names `otlp`), and off with OTEL_SDK_DISABLED=true or `none`.
 */
export const fromEnv = (env: Env): TelemetrySettings => {
  const problems: Array<string> = []
  const { int, target } = reader(env, problems)
  const sdkDisabled = value(env, "OTEL_SDK_DISABLED")?.toLowerCase() === "true"
  const general = value(env, "OTEL_EXPORTER_OTLP_ENDPOINT") !== undefined
  const metricsList = exporters(env, "OTEL_METRICS_EXPORTER")
  const tracesList = exporters(env, "OTEL_TRACES_EXPORTER")
  const wants = (list: ReadonlySet<string> | undefined, endpointSet: boolean) =>
    !sdkDisabled && (list === undefined ? endpointSet : list.has("otlp"))

  const attributes = parseKeyValues(value(env, "OTEL_RESOURCE_ATTRIBUTES"), problems, "OTEL_RESOURCE_ATTRIBUTES")
  const serviceName = value(env, "OTEL_SERVICE_NAME") ?? attributes["service.name"] ?? "sidecar"
  delete attributes["service.name"]

  let metrics: OtlpMetricsSettings | undefined
  if (wants(metricsList, general || value(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") !== undefined)) {
    const intervalMs = int("OTEL_METRIC_EXPORT_INTERVAL", 60_000, 1)
    // The SDK's reader refuses a timeout longer than the interval.
    const exportTimeoutMs = Math.min(int("OTEL_METRIC_EXPORT_TIMEOUT", 30_000, 1), intervalMs)
    metrics = { ...target("METRICS", "v1/metrics"), intervalMs, exportTimeoutMs }
  }
  let traces: OtlpTracesSettings | undefined
  if (wants(tracesList, general || value(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") !== undefined)) {
    traces = {
      ...target("TRACES", "v1/traces"),
      ...sampler(env, problems),
      scheduledDelayMs: int("OTEL_BSP_SCHEDULE_DELAY", 5_000),
      exportTimeoutMs: int("OTEL_BSP_EXPORT_TIMEOUT", 30_000, 1),
      maxQueueSize: int("OTEL_BSP_MAX_QUEUE_SIZE", 2_048, 1),
      maxExportBatchSize: int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1)
    }
  }
  return {
    resource: { serviceName, attributes },
    prometheus: metricsList === undefined || metricsList.has("prometheus"),
    metrics,
    traces,
    // Variables shared by both signals would otherwise be reported twice.
    problems: [...new Set(problems)]
  }
}
