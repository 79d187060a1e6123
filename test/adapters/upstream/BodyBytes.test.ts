// A body kept up to a cap: whole chunks by reference, the last one cut at the cap.
import { describe, expect, it } from "vitest"
import { BodyBytes } from "../../../src/adapters/upstream/BodyBytes.js"

describe("BodyBytes", () => {
  it("keeps chunks until the cap, cuts the one that crosses it, and says when it is reached", () => {
    const kept = new BodyBytes(10)
    const first = Buffer.from("abcd")
    expect(kept.add(first)).toBe(false)
    expect(kept.bytes()).toBe(first) // one chunk: no copy
    expect(kept.add(Buffer.from("efgh"))).toBe(false)
    expect(kept.add(Buffer.from("ijklmn"))).toBe(true)
    expect(kept.bytes().toString()).toBe("abcdefghij")
  })
  it("an empty body is empty", () => {
    expect(new BodyBytes(10).bytes().length).toBe(0)
  })
})
