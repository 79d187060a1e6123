/**
 * `npm run demo`: walks an in-process Sidecar through every lifecycle phase against simulated
 * providers on 127.0.0.1 (no keys, no network) in ~20 s. Exits 1 if a phase misbehaved.
 */
import { runDemo } from "./demo/RunDemo.js"

/** Last resort against a hang; runDemo bounds its own waits well within this. */
const HARD_LIMIT_MS = 110_000
setTimeout(() => {
  process.stderr.write(`demo: still running after ${HARD_LIMIT_MS / 1000} s, giving up\n`)
  process.exit(2)
}, HARD_LIMIT_MS).unref()

const result = await runDemo((line) => process.stdout.write(`${line}\n`))
process.exit(result.ok ? 0 : 1)
