/**
 * Migration 1: backends (keys encrypted), their persisted cooldown state, the usage ledger,
 * and a small key/value table (the master-key check value).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // `spec` is the backend's YAML shape as JSON, without `api_key` and `enabled` (columns of their own).
  // The key is AES-256-GCM: ciphertext, 12-byte nonce, 16-byte tag; all three NULL for a backend without a key.
  yield* sql`CREATE TABLE backends (
    id TEXT PRIMARY KEY NOT NULL,
    position INTEGER NOT NULL,
    spec TEXT NOT NULL,
    key_ciphertext BLOB,
    key_nonce BLOB,
    key_tag BLOB,
    source TEXT NOT NULL CHECK (source IN ('config', 'admin')),
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`
  // Times are epoch ms; `reason` is NULL when no cooldown has a reason.
  yield* sql`CREATE TABLE backend_state (
    id TEXT PRIMARY KEY NOT NULL,
    streak INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    cooling_since INTEGER NOT NULL,
    cooling_until INTEGER NOT NULL,
    reason TEXT,
    errors INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`
  // One row per upstream attempt (AttemptRecord); NULL where the record has undefined.
  yield* sql`CREATE TABLE usage (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    backend TEXT NOT NULL,
    pool TEXT NOT NULL,
    model TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    phase TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,
    outcome TEXT NOT NULL,
    error_class TEXT NOT NULL,
    first_byte_ms REAL,
    duration_ms REAL NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd REAL
  )`
  // Time-range scans, and group-by backend / model within a range.
  yield* sql`CREATE INDEX usage_at ON usage (at)`
  yield* sql`CREATE INDEX usage_backend_at ON usage (backend, at)`
  yield* sql`CREATE INDEX usage_model_at ON usage (model, at)`
  yield* sql`CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
  )`
})
