// Cached tagged-enum constructors: built once, and the values are Data's own (equality, $is, $match).
import { describe, expect, it } from "@effect/vitest"
import { Data, Equal } from "effect"
import { cached } from "../../src/domain/TaggedEnum.js"

type Shape = Data.TaggedEnum<{ Circle: { readonly r: number }; Square: { readonly side: number } }>

describe("cached tagged enum", () => {
  it("hands out one constructor per tag; values keep Data's structural equality and matching", () => {
    const plain = Data.taggedEnum<Shape>()
    const Shape = cached(Data.taggedEnum<Shape>())
    expect(plain.Circle).not.toBe(plain.Circle) // Effect's proxy: a new closure per access
    expect(Shape.Circle).toBe(Shape.Circle)
    const c = Shape.Circle({ r: 1 })
    expect(Equal.equals(c, plain.Circle({ r: 1 }))).toBe(true)
    expect(Shape.$is("Circle")(c)).toBe(true)
    expect(Shape.$match(Shape.Square({ side: 2 }), { Circle: () => "circle", Square: (s) => `square ${s.side}` })).toBe("square 2")
  })
})
