/**
 * The Primary-Wait funnel (SPEC §7): the counters operators decide `max_retries` from, and the
 * two identities they must satisfy once no request is in flight.
 */
export interface Funnel {
  readonly enter: number
  readonly recovery: number
  readonly exhausted: number
  readonly abandoned: number
  readonly emergencyActivations: number
  readonly emergencySuccess: number
  readonly allPoolsExhausted: number
}

/** Every request that entered Primary-Wait left it exactly one way. */
export const entriesBalance = (f: Funnel): boolean => f.enter === f.recovery + f.exhausted + f.abandoned

/** Every exhausted Primary-Wait went on to emergency. */
export const exhaustedBalance = (f: Funnel): boolean => f.exhausted === f.emergencyActivations

/** Violations of the two identities, in words. */
export const imbalances = (f: Funnel): Array<string> => [
  ...(entriesBalance(f)
    ? []
    : [`funnel: enter ${f.enter} ≠ recovery ${f.recovery} + exhausted ${f.exhausted} + abandoned ${f.abandoned}`]),
  ...(exhaustedBalance(f) ? [] : [`funnel: exhausted ${f.exhausted} ≠ emergency activations ${f.emergencyActivations}`])
]
