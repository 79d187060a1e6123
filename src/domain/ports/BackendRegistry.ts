/**
 * Port: the backends Sidecar holds, as operators manage them (config file upserts at startup,
 * admin API and CLI at runtime). Every change is in the FleetStore — and so routes — before the
 * effect returns.
 */
import { Context, Data, type Effect, type Option } from "effect"
import type { Backend } from "../Backend.js"

export class BackendNotFound extends Data.TaggedError("BackendNotFound")<{ readonly id: string }> {
  override get message() {
    return `No backend with id "${this.id}"`
  }
}

export class BackendExists extends Data.TaggedError("BackendExists")<{ readonly id: string }> {
  override get message() {
    return `A backend with id "${this.id}" already exists`
  }
}

export interface BackendRegistryShape {
  /** Every backend, in configuration order (config file first, then those created at runtime). */
  readonly list: Effect.Effect<ReadonlyArray<Backend>>
  readonly get: (id: string) => Effect.Effect<Option.Option<Backend>>
  /** Adds a backend; its id must be new. */
  readonly create: (backend: Backend) => Effect.Effect<void, BackendExists>
  /** Replaces a backend (same id), keeping its live state (cooldown, rate window). */
  readonly replace: (backend: Backend) => Effect.Effect<void, BackendNotFound>
  readonly remove: (id: string) => Effect.Effect<void, BackendNotFound>
}

export class BackendRegistry extends Context.Tag("sidecar/BackendRegistry")<BackendRegistry, BackendRegistryShape>() {}
