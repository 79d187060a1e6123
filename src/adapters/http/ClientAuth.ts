/**
 * Bearer-token checks for clients (`security.proxy_keys`) and operators (`admin_token`), compared
 * in constant time so that response timing says nothing about a key.
 */
import { timingSafeEqual, createHash } from "node:crypto"
import type { IncomingHttpHeaders } from "node:http"

const digest = (s: string) => createHash("sha256").update(s).digest()

export const bearerToken = (headers: IncomingHttpHeaders): string | undefined => {
  const v = headers.authorization
  if (v === undefined) return undefined
  const m = /^Bearer\s+(.+)$/i.exec(v.trim())
  return m?.[1]
}

/** Digests of the accepted tokens, made once; comparing digests keeps lengths equal. */
export const tokenMatcher = (tokens: ReadonlyArray<string>) => {
  const accepted = tokens.map(digest)
  return (given: string | undefined): boolean => {
    if (given === undefined) return false
    const d = digest(given)
    let ok = false
    for (const a of accepted) ok = timingSafeEqual(a, d) || ok
    return ok
  }
}
