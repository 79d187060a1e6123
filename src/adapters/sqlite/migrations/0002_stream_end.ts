/**
 * Migration 2: how a served attempt's body ended (`complete`, `cut`, `stall`, `reset`,
 * `client_closed`), so a stream broken after its commit point shows in the ledger; NULL for
 * attempts that never committed and for rows written before this column existed.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.flatMap(SqlClient.SqlClient, (sql) => sql`ALTER TABLE usage ADD COLUMN stream_end TEXT`)
