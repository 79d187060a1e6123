/**
 * The one shape check the upstream adapter's JSON readers share (error bodies, usage, SSE events,
 * request bodies): a plain JSON object, not null, not an array.
 */
export const isObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)
