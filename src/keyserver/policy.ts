// What the keyserver agrees to sign. A compromised connection process must not turn the keyserver into a
// general signing oracle: only handshake payloads in the exact form the engine sends them, a few per connection.
import { checkDhParameters, checkDhPublicValue, checkEcPoint } from '../crypto/provider.js'
import { Reader } from '../tls/codec.js'
import { GROUP_NAMES, TLS12_SIGNATURE_SCHEMES, TLS13_SIGNATURE_SCHEMES } from '../tls/constants.js'
import { EC_CURVE_TYPE_NAMED } from '../tls/messages12.js'

// TLS 1.3 CertificateVerify input (RFC 8446 §4.4.3): 64 spaces, the context string, a zero byte, a transcript hash.
const TLS13_PREFIX = new Uint8Array([...new Array(64).fill(0x20), ...new TextEncoder().encode('TLS 1.3, server CertificateVerify'), 0])
// The transcript hash is the cipher suite's (SHA-256 or SHA-384), not the signature scheme's: an ECDSA P-256 key
// signs a 48-byte hash under TLS_AES_256_GCM_SHA384, so the scheme does not determine the length.
const TRANSCRIPT_HASH_LENGTHS = new Set([32, 48])

// TLS 1.2 ServerKeyExchange input (RFC 5246 §7.4.3): client_random || server_random || the key exchange params.
const RANDOMS_LENGTH = 64
const X25519_PUBLIC_KEY_LENGTH = 32 // RFC 7748 §6.1

// Signatures one connection may ask for: one CertificateVerify (TLS 1.3) or one ServerKeyExchange (TLS 1.2).
export const SIGNATURES_PER_CONNECTION = 1

const hex = (code: number) => `0x${code.toString(16).padStart(4, '0')}`

function startsWithTls13Prefix(message: Uint8Array): boolean {
  if (message.length < TLS13_PREFIX.length) return false
  for (let i = 0; i < TLS13_PREFIX.length; i++) if (message[i] !== TLS13_PREFIX[i]) return false
  return true
}

// The Reader throws on a truncated vector or trailing bytes; its message (or a key check's) is the reason.
function reason(check: () => void): string | undefined {
  try {
    check()
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

/** Why `params` (after the randoms) is not a ServerECDHParams (RFC 8422 §5.4) we would send; undefined if it is one. */
function checkEcdhParams(params: Uint8Array): string | undefined {
  return reason(() => {
    const r = new Reader(params)
    if (r.u8() !== EC_CURVE_TYPE_NAMED) throw new Error('ECParameters curve_type is not named_curve')
    const code = r.u16()
    const group = GROUP_NAMES.get(code)
    const point = r.vector(1)
    r.end()
    if (group === 'x25519') {
      if (point.length !== X25519_PUBLIC_KEY_LENGTH) throw new Error(`x25519 public key of ${point.length} bytes`)
    } else if (group === 'secp256r1' || group === 'secp384r1') {
      checkEcPoint(group, point)
    } else {
      throw new Error(`named group ${hex(code)} is not a curve titus uses`)
    }
  })
}

/** Why `params` is not a ServerDHParams (RFC 5246 §7.4.3) we would send; undefined if it is one. */
function checkDhParams(params: Uint8Array): string | undefined {
  return reason(() => {
    const r = new Reader(params)
    const p = r.vector(2)
    const g = r.vector(2)
    const ys = r.vector(2)
    r.end()
    checkDhParameters({ p, g })
    checkDhPublicValue(p, ys, 'DH')
  })
}

/** Undefined if `message` is a payload the engine legitimately asks to sign with `scheme`, else why not. */
/** The TLS versions a vhost has on: the keyserver signs no payload of a version its vhost has off. */
export interface SignableVersions {
  tls12: boolean
  tls13: boolean
}

export function checkSignPayload(message: Uint8Array, scheme: number, versions: SignableVersions): string | undefined {
  if (startsWithTls13Prefix(message)) {
    if (!versions.tls13) return 'a TLS 1.3 CertificateVerify input for a vhost with TLS 1.3 off'
    const hashLength = message.length - TLS13_PREFIX.length
    if (!TRANSCRIPT_HASH_LENGTHS.has(hashLength)) return `TLS 1.3 CertificateVerify input with a ${hashLength}-byte transcript hash (not 32 or 48)`
    if (!TLS13_SIGNATURE_SCHEMES.has(scheme)) return `scheme ${hex(scheme)} is not allowed in a TLS 1.3 CertificateVerify (RFC 8446 §4.2.3)`
    return undefined
  }
  if (message.length <= RANDOMS_LENGTH) return `payload of ${message.length} bytes is not a TLS handshake signature input`
  if (!versions.tls12) return 'a TLS 1.2 ServerKeyExchange input for a vhost with TLS 1.2 off'
  if (!TLS12_SIGNATURE_SCHEMES.has(scheme)) return `scheme ${hex(scheme)} is not one titus signs a TLS 1.2 ServerKeyExchange with`
  // No bytes are both: a ServerECDHParams is at most 101 bytes, a ServerDHParams with a 2048-bit prime over 500.
  const params = message.subarray(RANDOMS_LENGTH)
  const ecdh = checkEcdhParams(params)
  if (ecdh === undefined) return undefined
  const dh = checkDhParams(params)
  if (dh === undefined) return undefined
  return `not a TLS 1.2 ServerKeyExchange payload: neither a ServerECDHParams (${ecdh}) nor a ServerDHParams (${dh})`
}
