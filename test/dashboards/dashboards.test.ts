// Every PromQL expression in dashboards/sidecar.json and dashboards/alerts.yml parses with the
// Prometheus project's own grammar (@prometheus-io/lezer-promql) and names only metrics Sidecar
// exports — the list scraped from the real Prometheus pipeline, not a hand-written copy.
import { describe, expect, it } from "@effect/vitest"
import { parser } from "@prometheus-io/lezer-promql"
import { Effect, Layer, Metric } from "effect"
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { parse as parseYaml } from "yaml"
import * as FleetStoreMemory from "../../src/adapters/memory/FleetStoreMemory.js"
import * as MetricsExport from "../../src/adapters/telemetry/MetricsExport.js"
import * as M from "../../src/domain/Metrics.js"
import { Policy } from "../../src/domain/Policy.js"
import { toPolicy } from "../../src/adapters/config/SidecarConfig.js"
import { decodeConfig } from "../adapters/telemetry/harness.js"

const root = join(import.meta.dirname, "..", "..")
const read = (file: string) => readFileSync(join(root, "dashboards", file), "utf8")

/** Grafana's built-in interval variables, as Grafana substitutes them before querying. */
const grafanaIntervals: Record<string, string> = { $__rate_interval: "5m", $__interval: "1m", $__range: "6h" }

interface Expression {
  readonly where: string
  readonly expr: string
}

const dashboardExpressions = (): Array<Expression> => {
  const dash = JSON.parse(read("sidecar.json")) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string }>; panels?: Array<unknown> }>
    templating: { list: Array<{ name: string; type: string; query: unknown }> }
  }
  const out: Array<Expression> = []
  const visit = (panels: ReadonlyArray<{ title: string; targets?: Array<{ expr: string }>; panels?: Array<unknown> }>) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ where: `sidecar.json panel "${p.title}"`, expr: t.expr })
      visit((p.panels ?? []) as typeof panels)
    }
  }
  visit(dash.panels)
  for (const v of dash.templating.list.filter((v) => v.type === "query")) {
    // label_values(<series selector>, <label>): the selector is PromQL.
    const q = (v.query as { query: string }).query
    const m = /^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$/.exec(q)
    expect([v.name, m !== null]).toEqual([v.name, true])
    out.push({ where: `sidecar.json variable $${v.name}`, expr: m![1]! })
  }
  return out
}

const alertExpressions = (): Array<Expression> => {
  const rules = parseYaml(read("alerts.yml")) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }
  return rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alerts.yml ${r.alert}`, expr: r.expr })))
}

/** Parses one expression: its syntax errors (as text) and the metric names its selectors use. */
const analyze = (expr: string) => {
  let text = expr
  for (const [v, d] of Object.entries(grafanaIntervals)) text = text.split(v).join(d)
  const errors: Array<string> = []
  const metrics: Array<string> = []
  parser.parse(text).iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(`error at ${node.from}: ${JSON.stringify(text.slice(Math.max(0, node.from - 10), node.to + 10))}`)
      if (node.name === "Identifier" && node.node.parent?.name === "VectorSelector") metrics.push(text.slice(node.from, node.to))
    }
  })
  return { errors, metrics }
}

/**
 * The names a Prometheus scrape of Sidecar shows: every instrument of src/domain/Metrics.ts, the
 * usage ledger's drop counter, and the fleet gauges, exported through MetricsExport and scraped.
 */
const exportedNames = async (): Promise<ReadonlySet<string>> => {
  for (const metric of Object.values(M)) {
    // A Metric is a function object (applying it to an effect tracks that effect).
    if (typeof metric === "function" && "unsafeValue" in metric) (metric as Metric.Metric<unknown, unknown, unknown>).unsafeValue([])
  }
  // Registered by src/adapters/sqlite/UsageLedger.ts (`usageDropped`) in the full app.
  Metric.counter("sidecar_usage_dropped", { incremental: true }).unsafeValue([])
  const config = decodeConfig({ backends: [{ id: "b1", pool: "primary", base_url: "http://127.0.0.1:1/v1", rpm: 10 }] })
  const fleet = FleetStoreMemory.layer(config.backends).pipe(Layer.provide(Layer.succeed(Policy, toPolicy(config))))
  const text = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const routes = yield* MetricsExport.make({ resource: { serviceName: "sidecar", attributes: {} }, prometheus: true, otlp: undefined })
    const server = createServer((req, res) => routes[0]!.handle(req, res))
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
      () => Effect.sync(() => server.close())
    )
    return yield* Effect.promise(() => fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`).then((r) => r.text()))
  })).pipe(Effect.provide(fleet)))
  // From the `# TYPE <name> <type>` declarations (parse-prometheus-text-format throws on an
  // unlabelled histogram whose _count/_sum precede its buckets, the OTel exporter's order).
  const names = new Set<string>()
  const declared = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)]
  expect(declared.length).toBe(new Set(declared.map((d) => d[1])).size) // each family once
  for (const [, name = "", type] of declared) {
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s)
    else names.add(name)
  }
  return names
}

describe("dashboards and alerts", () => {
  const expressions = [...dashboardExpressions(), ...alertExpressions()]

  it("finds the expressions (panels, variables, alert rules)", () => {
    expect(expressions.filter((e) => e.where.startsWith("alerts.yml")).length).toBeGreaterThanOrEqual(5)
    expect(expressions.filter((e) => e.where.includes("panel")).length).toBeGreaterThanOrEqual(15)
  })

  it("every expression parses with the Prometheus grammar, without error nodes", () => {
    const bad = expressions.map((e) => ({ ...e, errors: analyze(e.expr).errors })).filter((e) => e.errors.length > 0)
    expect(bad).toEqual([])
    // The check itself catches a broken expression.
    expect(analyze("sum(rate(sidecar_requests_total[5m])").errors).not.toEqual([])
  })

  it("every metric they use is one Sidecar exports, and every exported family is used", async () => {
    const exported = await exportedNames()
    expect(exported).toContain("sidecar_requests_total")
    expect(exported).toContain("sidecar_request_duration_seconds_bucket")
    expect(exported).toContain("sidecar_backend_rate_window_remaining")
    const used = expressions.flatMap((e) => analyze(e.expr).metrics.map((metric) => ({ where: e.where, metric })))
    expect(used.filter((u) => !exported.has(u.metric))).toEqual([])
    const usedNames = new Set(used.map((u) => u.metric))
    const families = [...exported].filter((n) => n.startsWith("sidecar_")).map((n) => n.replace(/_(bucket|sum|count)$/, ""))
    expect([...new Set(families)].filter((f) => ![...usedNames].some((u) => u === f || u.startsWith(`${f}_`)))).toEqual([])
  })
})
