// Preloaded into a process by bench/alloc.ts (node --import): the first SIGUSR2 starts V8's
// sampling heap profiler, counting objects the GC already collected too (so it sees garbage, the
// cost of a request); the second writes the profile to $HEAP_OUT. With HEAP_SURVIVORS=1, objects
// that died young (collected by a scavenge) are left out: what remains survived a scavenge, was
// copied or promoted, and is what makes scavenges slow.
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector"

const session = new Session()
session.connect()
let sampling = false
process.on("SIGUSR2", () => {
  if (!sampling) {
    sampling = true
    session.post("HeapProfiler.enable", () =>
      session.post("HeapProfiler.startSampling", {
        samplingInterval: 512,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: process.env.HEAP_SURVIVORS !== "1"
      }))
    return
  }
  session.post("HeapProfiler.stopSampling", (err, result) => {
    if (err === null && result !== undefined) writeFileSync(process.env.HEAP_OUT ?? "heap.json", JSON.stringify(result.profile))
  })
})
