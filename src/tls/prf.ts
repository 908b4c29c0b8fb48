// TLS 1.2 PRF (RFC 5246 §5), master secret (§8.1, RFC 7627 §4), key block (§6.3) and Finished (§7.4.9).
import { AEAD_KEY_LENGTH, HASH_LENGTH, hmac, type AeadName, type HashName } from '../crypto/provider.js'
import { tls12FixedIvLength } from './record.js'

const MASTER_SECRET_LENGTH = 48
const VERIFY_DATA_LENGTH = 12

/** PRF(secret, label, seed) = P_hash(secret, label || seed), truncated to `length`. */
export function prf(h: HashName, secret: Uint8Array, label: string, seed: Uint8Array, length: number): Buffer {
  const labelAndSeed = Buffer.concat([Buffer.from(label, 'latin1'), seed])
  const out = Buffer.allocUnsafe(Math.ceil(length / HASH_LENGTH[h]) * HASH_LENGTH[h])
  // A(0) = seed; A(i) = HMAC(secret, A(i-1)); output blocks HMAC(secret, A(i) || seed).
  let a: Buffer = labelAndSeed
  for (let offset = 0; offset < length; offset += HASH_LENGTH[h]) {
    a = hmac(h, secret, a)
    out.set(hmac(h, secret, a, labelAndSeed), offset)
  }
  return out.subarray(0, length)
}

/** RFC 7627 §4: the master secret bound to the whole handshake up to ClientKeyExchange. */
export function extendedMasterSecret(h: HashName, preMasterSecret: Uint8Array, sessionHash: Uint8Array): Buffer {
  return prf(h, preMasterSecret, 'extended master secret', sessionHash, MASTER_SECRET_LENGTH)
}

/** RFC 5246 §8.1: the legacy master secret, bound only to the randoms (kept for clients without EMS, if allowed). */
export function legacyMasterSecret(h: HashName, preMasterSecret: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): Buffer {
  return prf(h, preMasterSecret, 'master secret', Buffer.concat([clientRandom, serverRandom]), MASTER_SECRET_LENGTH)
}

export interface Tls12TrafficKeys {
  readonly clientKey: Buffer
  readonly serverKey: Buffer
  readonly clientIv: Buffer
  readonly serverIv: Buffer
  /** The whole block the keys are views of: zero it once the record protections hold their copies. */
  readonly block: Buffer
}

/** Key block for an AEAD suite: no MAC keys (RFC 5246 §6.3; IV sizes per RFC 5288 §3 and RFC 7905 §2). */
export function keyBlock(h: HashName, aead: AeadName, masterSecret: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): Tls12TrafficKeys {
  const keyLength = AEAD_KEY_LENGTH[aead]
  const ivLength = tls12FixedIvLength(aead)
  const block = prf(h, masterSecret, 'key expansion', Buffer.concat([serverRandom, clientRandom]), 2 * keyLength + 2 * ivLength)
  let at = 0
  const take = (length: number) => block.subarray(at, (at += length))
  return { clientKey: take(keyLength), serverKey: take(keyLength), clientIv: take(ivLength), serverIv: take(ivLength), block }
}

/** verify_data = PRF(master_secret, finished_label, Hash(handshake_messages))[0..11]. */
export function finishedVerifyData12(h: HashName, masterSecret: Uint8Array, sender: 'client' | 'server', transcriptHash: Uint8Array): Buffer {
  return prf(h, masterSecret, `${sender} finished`, transcriptHash, VERIFY_DATA_LENGTH)
}
