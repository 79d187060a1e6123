/**
 * Port: one attempt against one backend. It never retries: every retry decision is the lifecycle's.
 */
import { Context, type Effect } from "effect"
import type { Backend } from "../Backend.js"
import type { Observation } from "../FailureClass.js"
import type { Ticket } from "../Fleet.js"
import type { Phase } from "../Phase.js"
import type { ProxyRequest, UpstreamResponse } from "../ProxyRequest.js"

export interface AttemptSpec {
  readonly request: ProxyRequest
  readonly backend: Backend
  /** The pick this attempt was sent under (when, and under which cooldown generation). */
  readonly ticket: Ticket
  /** The model name to send (the backend's mapping of the canonical model). */
  readonly upstreamModel: string
  readonly phase: Phase
  /** 1-based position among the request's attempts. */
  readonly attempt: number
  /**
   * A break of this attempt's stream could be continued (SPEC §1 "After the commit point"): the
   * data plane keeps the answer's text so far. Off when no backend could continue, to save the work.
   */
  readonly trackAnswer: boolean
}

export interface AttemptReply {
  /** What happened up to the commit point (SPEC §1 step 3). */
  readonly observation: Observation
  /**
   * The response, when one arrived: committed for a 2xx (its body not yet consumed), or an error
   * response small enough to hand to the client if the lifecycle passes it through.
   */
  readonly response?: UpstreamResponse | undefined
  /** Milliseconds from send to the response's first byte, when one came. */
  readonly firstByteMs?: number | undefined
}

export interface UpstreamShape {
  /**
   * Sends one attempt and waits until its commit point. Never fails: transport problems are
   * observations. Interruption (the client left) must abort the upstream request at once.
   */
  readonly send: (spec: AttemptSpec) => Effect.Effect<AttemptReply>
}

export class Upstream extends Context.Tag("sidecar/Upstream")<Upstream, UpstreamShape>() {}
