/**
 * `Data.taggedEnum` with its constructors made once. Effect's own object is a Proxy that builds a
 * new constructor closure on every `Enum.Tag` access, i.e. on every value made; events, outcomes
 * and classes are made several times per request (measured: ~0.6 KB per request of closures).
 */

/** Wraps a `Data.taggedEnum` object: same members, each built on first use and kept. */
export const cached = <E extends object>(enumObject: E): E => {
  const made = new Map<PropertyKey, unknown>()
  return new Proxy(enumObject, {
    get(target, tag, receiver) {
      let member = made.get(tag)
      if (member === undefined) {
        member = Reflect.get(target, tag, receiver)
        made.set(tag, member)
      }
      return member
    }
  })
}
