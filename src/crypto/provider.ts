// The one module the TLS engine calls for every cryptographic primitive. node:crypto exists in Node, Bun
// and Deno; capabilities that differ between them are feature-detected here (lazily: nothing is computed at
// import time, because every connection starts a new process).
import {
  ECDH,
  createCipheriv,
  createDecipheriv,
  createDiffieHellman,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes as nodeRandomBytes,
  timingSafeEqual,
  type DiffieHellman,
  type KeyObject,
} from 'node:crypto'
import { FFDHE2048_PRIME_HEX, FFDHE3072_PRIME_HEX, FFDHE4096_PRIME_HEX } from './ffdhe-primes.js'

export type HashName = 'sha256' | 'sha384'
export type AeadName = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'
export type GroupName = 'x25519' | 'secp256r1' | 'secp384r1' | 'ffdhe2048' | 'ffdhe3072' | 'ffdhe4096'

export const HASH_LENGTH: Record<HashName, number> = { sha256: 32, sha384: 48 }
export const AEAD_KEY_LENGTH: Record<AeadName, number> = { 'aes-128-gcm': 16, 'aes-256-gcm': 32, 'chacha20-poly1305': 32 }
export const AEAD_TAG_LENGTH = 16
export const AEAD_NONCE_LENGTH = 12

export function randomBytes(length: number): Buffer {
  return nodeRandomBytes(length)
}

export function hash(name: HashName, parts: readonly Uint8Array[]): Buffer {
  const h = createHash(name)
  for (const part of parts) h.update(part)
  return h.digest()
}

export function hmac(name: HashName, key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac(name, key)
  for (const part of parts) h.update(part)
  return h.digest()
}

/** Constant-time equality; different lengths compare unequal (length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** HKDF-Extract (RFC 5869). */
export function hkdfExtract(name: HashName, salt: Uint8Array, ikm: Uint8Array): Buffer {
  return hmac(name, salt, ikm)
}

/** HKDF-Expand (RFC 5869); TLS never asks for more than 255 blocks. */
export function hkdfExpand(name: HashName, prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  const hashLength = HASH_LENGTH[name]
  const out = Buffer.allocUnsafe(Math.ceil(length / hashLength) * hashLength)
  let previous: Uint8Array = new Uint8Array(0)
  for (let block = 0; block * hashLength < length; block++) {
    previous = hmac(name, prk, previous, info, Uint8Array.of(block + 1))
    out.set(previous, block * hashLength)
  }
  return out.subarray(0, length)
}

// ---------------------------------------------------------------------------------------------------------
// AEAD

export interface Aead {
  /** Returns ciphertext || tag; the plaintext is the concatenation of `parts`. */
  seal(nonce: Uint8Array, aad: Uint8Array, parts: readonly Uint8Array[]): Buffer
  /** Returns the plaintext, or undefined when authentication fails. */
  open(nonce: Uint8Array, aad: Uint8Array, ciphertextAndTag: Uint8Array): Buffer | undefined
}

const aeadAvailability = new Map<AeadName, boolean>()

/** Whether createAead works for the AEAD on this runtime (natively, or ChaCha20-Poly1305 through @noble/ciphers). */
export function aeadAvailable(name: AeadName): boolean {
  let available = aeadAvailability.get(name)
  if (available === undefined) {
    try {
      const probe = createAead(name, Buffer.alloc(AEAD_KEY_LENGTH[name]))
      const nonce = Buffer.alloc(AEAD_NONCE_LENGTH)
      const sealed = probe.seal(nonce, Buffer.alloc(0), [Buffer.from('probe')])
      available = probe.open(nonce, Buffer.alloc(0), sealed)?.toString() === 'probe'
    } catch {
      available = false
    }
    aeadAvailability.set(name, available)
  }
  return available
}

let nativeChaCha20Poly1305: boolean | undefined

/** Bun's node:crypto lacks ChaCha20-Poly1305 ("Unknown cipher" from createCipheriv); probed on first use. */
function hasNativeChaCha20Poly1305(): boolean {
  if (nativeChaCha20Poly1305 === undefined) {
    try {
      createCipheriv('chacha20-poly1305', Buffer.alloc(32), Buffer.alloc(AEAD_NONCE_LENGTH), { authTagLength: AEAD_TAG_LENGTH })
      nativeChaCha20Poly1305 = true
    } catch {
      nativeChaCha20Poly1305 = false
    }
  }
  return nativeChaCha20Poly1305
}

export function createAead(name: AeadName, key: Uint8Array): Aead {
  if (key.length !== AEAD_KEY_LENGTH[name]) throw new Error(`${name} needs a ${AEAD_KEY_LENGTH[name]}-byte key`)
  if (name === 'chacha20-poly1305' && !hasNativeChaCha20Poly1305()) return createNobleChaCha20Poly1305(key)
  const cipherKey = Buffer.from(key)
  const options = { authTagLength: AEAD_TAG_LENGTH } as const
  return {
    seal(nonce, aad, parts) {
      // The ChaCha20 overload of createCipheriv is typed separately; the call is the same for GCM.
      const cipher = createCipheriv(name as 'chacha20-poly1305', cipherKey, nonce, options)
      cipher.setAAD(aad, { plaintextLength: parts.reduce((n, p) => n + p.length, 0) })
      const chunks: Buffer[] = []
      for (const part of parts) chunks.push(cipher.update(part))
      chunks.push(cipher.final(), cipher.getAuthTag())
      return Buffer.concat(chunks)
    },
    open(nonce, aad, ciphertextAndTag) {
      if (ciphertextAndTag.length < AEAD_TAG_LENGTH) return undefined
      const split = ciphertextAndTag.length - AEAD_TAG_LENGTH
      const decipher = createDecipheriv(name as 'chacha20-poly1305', cipherKey, nonce, options)
      decipher.setAAD(aad, { plaintextLength: split })
      decipher.setAuthTag(ciphertextAndTag.subarray(split))
      const plaintext = decipher.update(ciphertextAndTag.subarray(0, split))
      try {
        const rest = decipher.final()
        return rest.length === 0 ? plaintext : Buffer.concat([plaintext, rest])
      } catch {
        plaintext.fill(0)
        return undefined
      }
    },
  }
}

/** RFC 8439 ChaCha20-Poly1305 in JavaScript (~150 MB/s sealing 16 KiB records on Bun), for runtimes whose node:crypto lacks it. */
function createNobleChaCha20Poly1305(key: Uint8Array): Aead {
  // A bare require, which esbuild bundles as a module initialised on first call: runtimes with a native
  // ChaCha20 never evaluate @noble's module (its constants and cipher closures) when a connection starts.
  const { chacha20poly1305 } = require('@noble/ciphers/chacha.js') as typeof import('@noble/ciphers/chacha.js')
  // @noble keeps a reference to the key; ours is a private copy (the caller may zero its own).
  const cipherKey = Uint8Array.from(key)
  // @noble works in Uint8Arrays it allocates: on Bun it runs at a third of the speed when it writes into a Buffer.
  const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  return {
    seal(nonce, aad, parts) {
      return asBuffer(chacha20poly1305(cipherKey, nonce, aad).encrypt(parts.length === 1 ? parts[0] : Buffer.concat(parts)))
    },
    open(nonce, aad, ciphertextAndTag) {
      if (ciphertextAndTag.length < AEAD_TAG_LENGTH) return undefined
      try {
        // @noble compares the tag in constant time before it decrypts anything.
        return asBuffer(chacha20poly1305(cipherKey, nonce, aad).decrypt(ciphertextAndTag))
      } catch {
        return undefined
      }
    },
  }
}

// ---------------------------------------------------------------------------------------------------------
// Key exchange

/** The peer's key share is malformed or unsafe (maps to illegal_parameter in TLS). */
export class KeyShareError extends Error {}

export interface KeyExchange {
  readonly group: GroupName
  /** Our public value in TLS key_share encoding. */
  readonly publicKey: Uint8Array
  /** Validates the peer's key_share value and returns the shared secret in TLS encoding. One use only. */
  computeSecret(peerPublicKey: Uint8Array): Buffer
}

const FFDHE_PRIMES: Record<'ffdhe2048' | 'ffdhe3072' | 'ffdhe4096', { hex: string; exponentBytes: number }> = {
  // Exponent sizes are twice the groups' security levels (RFC 7919 §5.2), rounded up to bytes.
  ffdhe2048: { hex: FFDHE2048_PRIME_HEX, exponentBytes: 32 },
  ffdhe3072: { hex: FFDHE3072_PRIME_HEX, exponentBytes: 40 },
  ffdhe4096: { hex: FFDHE4096_PRIME_HEX, exponentBytes: 48 },
}
// One DH object per prime, created on first use: createDiffieHellman costs ~0.6 s on Bun. Reuse is safe
// although handshakes interleave (a TLS 1.2 ClientKeyExchange comes a round trip after our share, and a pooled
// process runs many handshakes): each call that needs a private key installs its own with setPrivateKey first.
const dhObjects = new Map<string, DiffieHellman>()

function leftPad(value: Buffer, length: number): Buffer {
  if (value.length === length) return value
  const out = Buffer.alloc(length)
  value.copy(out, length - value.length)
  value.fill(0)
  return out
}

/** Finite-field DH parameters: big-endian prime and generator without leading zeros. */
export interface DhParameters {
  readonly p: Uint8Array
  readonly g: Uint8Array
}

/** Bits of a big-endian unsigned integer; 0 for an empty one or one with a leading zero byte. */
export function bitLength(n: Uint8Array): number {
  return n.length === 0 || n[0] === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]))
}

/** Throws unless `p` and `g` are DH parameters titus uses: the engine on configuration, the keyserver before signing. */
export function checkDhParameters({ p, g }: DhParameters): void {
  const bits = bitLength(p)
  if (bits < 2048 || bits > 8192) throw new Error(`DH prime of ${bits} bits (2048 to 8192 without leading zeros)`)
  if ((p[p.length - 1] & 1) === 0) throw new Error('DH prime is even')
  if (g.length === 0 || g.length > 4 || g[0] === 0 || bitLength(g) < 2) throw new Error('DH generator must be 2 to 2^32-1')
}

/** Throws KeyShareError unless `y` is a public value for prime `p`: as long as p (left-padded) and 1 < y < p-1 (RFC 7919 §5.1). */
export function checkDhPublicValue(p: Uint8Array, y: Uint8Array, label: string): void {
  if (y.length !== p.length) throw new KeyShareError(`${label} key share has the wrong length`)
  const one = Buffer.alloc(p.length)
  one[p.length - 1] = 1
  const pMinusOne = Buffer.from(p)
  pMinusOne[p.length - 1] -= 1 // p is odd: no borrow
  if (Buffer.compare(y, one) <= 0 || Buffer.compare(y, pMinusOne) >= 0) throw new KeyShareError(`${label} public value out of range`)
}

/** Private exponent bytes: twice the security level of the prime (RFC 7919 §5.2), rounded up. */
function dhExponentBytes(primeBytes: number): number {
  return primeBytes <= 256 ? 32 : primeBytes <= 384 ? 40 : primeBytes <= 512 ? 48 : 64
}

/** The RFC 7919 prime of a named ffdhe group. */
export function ffdhePrime(group: keyof typeof FFDHE_PRIMES): Buffer {
  return Buffer.from(FFDHE_PRIMES[group].hex, 'hex')
}

/**
 * DH over any safe-prime group (TLS 1.2 DHE with configured parameters, and the RFC 7919 groups). Public
 * values and the shared secret are left-padded to the prime's length, as TLS 1.3 and RFC 7919 want them.
 */
export function startFiniteFieldDh(params: DhParameters, label: string, exponentBytes = dhExponentBytes(params.p.length)): Omit<KeyExchange, 'group'> {
  const prime = Buffer.from(params.p)
  const cacheKey = `${prime.toString('hex')}/${Buffer.from(params.g).toString('hex')}`
  let dh = dhObjects.get(cacheKey)
  if (!dh) {
    dh = createDiffieHellman(prime, Buffer.from(params.g))
    dhObjects.set(cacheKey, dh)
  }
  const object = dh
  const privateKey = randomBytes(exponentBytes)
  privateKey[0] |= 0x80 // full-size exponent, never zero
  object.setPrivateKey(privateKey)
  const publicKey = leftPad(object.generateKeys(), prime.length)
  return {
    publicKey,
    computeSecret(peer) {
      // RFC 8446 §4.2.8.1: same length as p.
      checkDhPublicValue(prime, peer, label)
      object.setPrivateKey(privateKey)
      try {
        return leftPad(object.computeSecret(Buffer.from(peer)), prime.length)
      } catch {
        throw new KeyShareError(`${label} public value rejected`)
      } finally {
        privateKey.fill(0)
      }
    },
  }
}

function startFfdhe(group: keyof typeof FFDHE_PRIMES): KeyExchange {
  return { group, ...startFiniteFieldDh({ p: ffdhePrime(group), g: Uint8Array.of(2) }, group, FFDHE_PRIMES[group].exponentBytes) }
}

type EcGroupName = 'secp256r1' | 'secp384r1'

const EC_CURVES: Record<EcGroupName, { curve: string; pointLength: number }> = {
  secp256r1: { curve: 'prime256v1', pointLength: 65 },
  secp384r1: { curve: 'secp384r1', pointLength: 97 },
}

/** Throws KeyShareError unless `point` is an uncompressed point on the curve: the only form TLS 1.3 allows (RFC 8446 §4.2.8.2) and the one we send. */
export function checkEcPoint(group: EcGroupName, point: Uint8Array): void {
  const { curve, pointLength } = EC_CURVES[group]
  if (point.length !== pointLength || point[0] !== 4) throw new KeyShareError(`${group} key share is not an uncompressed point`)
  try {
    ECDH.convertKey(Buffer.from(point), curve, undefined, undefined, 'uncompressed') // decoding checks the point is on the curve
  } catch {
    throw new KeyShareError(`${group} point is not on the curve`)
  }
}

function startEcdh(group: EcGroupName): KeyExchange {
  const ecdh = createECDH(EC_CURVES[group].curve)
  const publicKey = ecdh.generateKeys(undefined, 'uncompressed')
  return {
    group,
    publicKey,
    computeSecret(peer) {
      checkEcPoint(group, peer)
      try {
        return ecdh.computeSecret(peer)
      } catch {
        throw new KeyShareError(`${group} point is not on the curve`)
      }
    },
  }
}

function startX25519(): KeyExchange {
  // Request JWK at generation: exporting afterwards hangs on Node 20, and this route is the fastest.
  const pair = generateKeyPairSync('x25519', { publicKeyEncoding: { format: 'jwk' } })
  let privateKey: KeyObject | undefined = pair.privateKey
  const publicKey = Buffer.from(pair.publicKey.x as string, 'base64url')
  return {
    group: 'x25519',
    publicKey,
    computeSecret(peer) {
      if (peer.length !== 32) throw new KeyShareError('x25519 key share must be 32 bytes')
      if (!privateKey) throw new Error('key exchange already used')
      let secret: Buffer
      try {
        const peerKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(peer).toString('base64url') }, format: 'jwk' })
        secret = diffieHellman({ privateKey, publicKey: peerKey })
      } catch {
        // OpenSSL refuses low-order points (all-zero shared secret) itself.
        throw new KeyShareError('x25519 shared secret is zero')
      } finally {
        privateKey = undefined
      }
      if (secret.every(b => b === 0)) throw new KeyShareError('x25519 shared secret is zero')
      return secret
    },
  }
}

export function startKeyExchange(group: GroupName): KeyExchange {
  switch (group) {
    case 'x25519':
      return startX25519()
    case 'secp256r1':
    case 'secp384r1':
      return startEcdh(group)
    case 'ffdhe2048':
    case 'ffdhe3072':
    case 'ffdhe4096':
      return startFfdhe(group)
  }
}
