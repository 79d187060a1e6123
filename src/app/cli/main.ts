/**
 * The `sidecar` operator CLI's entry point (bin/sidecar.mjs loads it through tsx): runs one
 * command from argv and exits with its code.
 */
import { runCli } from "./Cli.js"

process.exitCode = await runCli(process.argv.slice(2), process.env, {
  out: (line) => console.log(line),
  err: (line) => console.error(line)
})
