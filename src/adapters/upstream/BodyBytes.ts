/**
 * A body's bytes kept up to a cap, by reference to the chunks undici hands over: an error body
 * (read for the classifier and replayed to the client) or a JSON body (read for its usage).
 */
export class BodyBytes {
  private readonly chunks: Array<Buffer> = []
  private size = 0

  constructor(private readonly cap: number) {}

  /** Keeps the chunk, cut at the cap; true once the cap is reached. */
  add(chunk: Buffer): boolean {
    const room = this.cap - this.size
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room)
    this.chunks.push(part)
    this.size += part.length
    return this.size >= this.cap
  }

  /** Everything kept, as one buffer (no copy for a body that came in one chunk). */
  bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] as Buffer : Buffer.concat(this.chunks, this.size)
  }
}
