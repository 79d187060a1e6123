/** The phases of a request's life (SPEC §1), as reported in `x-sidecar-phase` and metrics. */
export type Phase = "direct" | "primary_wait" | "emergency" | "exhausted"

/** Which limits a pick respects: the direct phases honour cooldowns and rpm; emergency its own limit. */
export type PickMode = "direct" | "emergency"
