/**
 * Port: where lifecycle events go. The live layer turns them into metrics and log lines; the
 * simulator also keeps them as a timeline.
 */
import { Context, type Effect } from "effect"
import type { LifecycleEvent } from "../LifecycleEvent.js"

export interface LifecycleEventsShape {
  /** Records one event. Cheap and non-blocking: it runs on the request path. */
  readonly emit: (event: LifecycleEvent) => Effect.Effect<void>
}

export class LifecycleEvents extends Context.Tag("sidecar/LifecycleEvents")<LifecycleEvents, LifecycleEventsShape>() {}
