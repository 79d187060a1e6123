#!/usr/bin/env node
// The `sidecar` operator CLI (`npx sidecar --help`): registers tsx, then runs src/app/cli/main.ts.
import { register } from "tsx/esm/api"

register()
await import("../src/app/cli/main.ts")
