/**
 * Migration 3: the usage ledger keeps only its time index. Reports scan a time range and group in
 * memory; the (backend, at) and (model, at) indexes were maintained on every insert, on the write
 * path of every request, for queries the time index serves as well.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.zipRight(sql`DROP INDEX IF EXISTS usage_backend_at`, sql`DROP INDEX IF EXISTS usage_model_at`))
