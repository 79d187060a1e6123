/**
 * The schema's migrations, in order. Keys are `<id>_<name>`; applied ids are recorded in
 * `effect_sql_migrations`, so reopening a database runs only the new ones.
 */
import * as Migrator from "@effect/sql/Migrator"
import initial from "./0001_initial.js"
import streamEnd from "./0002_stream_end.js"
import leanUsageIndexes from "./0003_lean_usage_indexes.js"

export const loader = Migrator.fromRecord({
  "0001_initial": initial,
  "0002_stream_end": streamEnd,
  "0003_lean_usage_indexes": leanUsageIndexes
})
