/**
 * Which source file a line of the `npm start` bundle (dist/main.js) came from, read from the
 * `// node_modules/…` and `// src/…` headers esbuild writes: with Effect bundled, a profile frame in
 * dist/main.js may be Effect's or Sidecar's own.
 */
import { existsSync, readFileSync } from "node:fs"

/** `fileAt(line)` (1-based line of dist/main.js) → `node_modules/effect/dist/esm/…` or `src/…`. */
export const bundleMap = (bundlePath: string): ((line: number) => string) => {
  const starts: Array<readonly [number, string]> = []
  if (existsSync(bundlePath)) {
    readFileSync(bundlePath, "utf8").split("\n").forEach((l, i) => {
      if (l.startsWith("// node_modules/") || l.startsWith("// src/")) starts.push([i + 1, l.slice(3)])
    })
  }
  return (line) => {
    let best = "?"
    for (let lo = 0, hi = starts.length - 1; lo <= hi;) {
      const mid = (lo + hi) >> 1
      const [at, file] = starts[mid] as readonly [number, string]
      if (at <= line) {
        best = file
        lo = mid + 1
      } else hi = mid - 1
    }
    return best
  }
}

/** The npm package a path is in (`effect`, `@effect/sql`), if any. */
export const packageOf = (path: string): string | undefined => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1]
