/**
 * A process's own CPU time (utime + stime from /proc/<pid>/stat, in clock ticks) and resident
 * memory (VmRSS from /proc/<pid>/status), read by pid from the orchestrator.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

/** Clock ticks per second (`getconf CLK_TCK`, almost always 100). */
export const clockTicks: number = (() => {
  try {
    const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 5_000 }).trim())
    return Number.isFinite(n) && n > 0 ? n : 100
  } catch {
    return 100
  }
})()

/** utime + stime of the process (all its threads), in clock ticks; NaN if it is gone. */
export const cpuTicks = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return NaN
  }
}

/** Resident set size in MB; NaN if the process is gone. */
export const rssMb = (pid: number): number => {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m === null ? NaN : Number(m[1]) / 1024
  } catch {
    return NaN
  }
}

/** A CPU window: call `stop()` to get the µs of CPU the process used since `start`. */
export const cpuWindow = (pid: number | undefined): { readonly stop: () => number } => {
  if (pid === undefined) return { stop: () => NaN }
  const before = cpuTicks(pid)
  return { stop: () => ((cpuTicks(pid) - before) * 1e6) / clockTicks }
}

/** Samples RSS every `everyMs` until `stop()`, which returns the largest sample (MB). */
export const rssSampler = (pid: number, everyMs: number): { readonly stop: () => number; readonly peak: () => number } => {
  let peak = rssMb(pid)
  const timer = setInterval(() => {
    const v = rssMb(pid)
    if (v > peak || !Number.isFinite(peak)) peak = v
  }, everyMs)
  return {
    peak: () => peak,
    stop: () => {
      clearInterval(timer)
      const v = rssMb(pid)
      return v > peak ? v : peak
    }
  }
}
