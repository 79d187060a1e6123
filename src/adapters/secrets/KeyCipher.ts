/**
 * AES-256-GCM for API keys at rest: a random 12-byte nonce per value and the backend id as
 * associated data, so a ciphertext copied into another backend's row does not decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { MasterKey, type MasterKeyValue } from "./MasterKey.js"

const ALGORITHM = "aes-256-gcm"
export const NONCE_BYTES = 12
export const TAG_BYTES = 16

/** One encrypted value, as stored: three separate byte strings. */
export interface Sealed {
  readonly ciphertext: Uint8Array
  readonly nonce: Uint8Array
  readonly tag: Uint8Array
}

export interface KeyCipherShape {
  /** Encrypts under a fresh random nonce: sealing the same value twice gives different bytes. */
  readonly seal: (plaintext: Redacted.Redacted<string>, associatedData: string) => Sealed
  /**
   * The plaintext, or none when the tag does not verify: another master key, other associated
   * data, or altered bytes. Never returns garbage.
   */
  readonly open: (sealed: Sealed, associatedData: string) => Option.Option<Redacted.Redacted<string>>
}

export class KeyCipher extends Context.Tag("sidecar/KeyCipher")<KeyCipher, KeyCipherShape>() {}

export const make = (master: MasterKeyValue): KeyCipherShape => {
  const key = Redacted.value(master.key)
  return {
    seal: (plaintext, associatedData) => {
      const nonce = randomBytes(NONCE_BYTES)
      const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES })
      cipher.setAAD(Buffer.from(associatedData, "utf8"))
      const ciphertext = Buffer.concat([cipher.update(Redacted.value(plaintext), "utf8"), cipher.final()])
      return { ciphertext, nonce, tag: cipher.getAuthTag() }
    },
    open: (sealed, associatedData) => {
      if (sealed.nonce.length !== NONCE_BYTES || sealed.tag.length !== TAG_BYTES) return Option.none()
      try {
        const decipher = createDecipheriv(ALGORITHM, key, sealed.nonce, { authTagLength: TAG_BYTES })
        decipher.setAAD(Buffer.from(associatedData, "utf8"))
        decipher.setAuthTag(sealed.tag)
        const text = Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString("utf8")
        return Option.some(Redacted.make(text))
      } catch {
        return Option.none()
      }
    }
  }
}

export const layer: Layer.Layer<KeyCipher, never, MasterKey> = Layer.effect(KeyCipher, Effect.map(MasterKey, make))
