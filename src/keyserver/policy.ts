// What the keyserver agrees to sign. A compromised connection process must not turn the keyserver into a
// general signing oracle: only well-formed handshake payloads, a few per connection.

// TLS 1.3 CertificateVerify input (RFC 8446 §4.4.3): 64 spaces, the context string, a zero byte, a transcript hash.
const TLS13_PREFIX = new Uint8Array([...new Array(64).fill(0x20), ...new TextEncoder().encode('TLS 1.3, server CertificateVerify'), 0])
const TRANSCRIPT_HASH_LENGTHS = new Set([32, 48]) // SHA-256 and SHA-384 suites

// TLS 1.2 ServerKeyExchange input (RFC 5246 §7.4.3): client_random || server_random || the key exchange params.
const RANDOMS_LENGTH = 64
const EC_CURVE_TYPE_NAMED = 3
// Uncompressed point lengths of the curves the engine speaks (RFC 8422 §5.4, RFC 7748).
const POINT_LENGTHS: ReadonlyMap<number, { length: number; prefix?: number }> = new Map([
  [0x001d, { length: 32 }], // x25519
  [0x0017, { length: 65, prefix: 4 }], // secp256r1
  [0x0018, { length: 97, prefix: 4 }], // secp384r1
])
const MIN_DH_PRIME_BITS = 2048
const MAX_DH_PRIME_BITS = 8192
const MAX_DH_GENERATOR_BYTES = 4

// PKCS#1 v1.5 signatures exist only for TLS 1.2 (RFC 8446 §4.2.3 forbids them in CertificateVerify).
const PKCS1_SCHEMES = new Set([0x0401, 0x0501, 0x0601])

// Signatures one connection may ask for: one CertificateVerify (TLS 1.3) or one ServerKeyExchange (TLS 1.2).
export const SIGNATURES_PER_CONNECTION = 1

function isTls13CertificateVerify(message: Uint8Array): boolean {
  if (!TRANSCRIPT_HASH_LENGTHS.has(message.length - TLS13_PREFIX.length)) return false
  for (let i = 0; i < TLS13_PREFIX.length; i++) if (message[i] !== TLS13_PREFIX[i]) return false
  return true
}

function bitLength(n: Uint8Array): number {
  return n.length === 0 || n[0] === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]!))
}

/** Why `params` (after the randoms) is not a ServerECDHParams we would send; undefined if it is one. */
function checkEcdhParams(params: Uint8Array): string | undefined {
  if (params.length < 4) return 'ServerECDHParams truncated'
  const curve = (params[1]! << 8) | params[2]!
  const point = POINT_LENGTHS.get(curve)
  if (!point) return `curve 0x${curve.toString(16)} is not one we use`
  if (params[3] !== point.length || params.length !== 4 + point.length) return `point of the wrong length for curve 0x${curve.toString(16)}`
  if (point.prefix !== undefined && params[4] !== point.prefix) return 'EC point is not uncompressed'
  return undefined
}

/** Why `params` is not a ServerDHParams with sane sizes; undefined if it is one. */
function checkDhParams(params: Uint8Array): string | undefined {
  let at = 0
  const field = (): Uint8Array | undefined => {
    if (at + 2 > params.length) return undefined
    const length = (params[at]! << 8) | params[at + 1]!
    if (length === 0 || at + 2 + length > params.length) return undefined
    const value = params.subarray(at + 2, at + 2 + length)
    at += 2 + length
    return value
  }
  const p = field()
  const g = field()
  const ys = field()
  if (!p || !g || !ys || at !== params.length) return 'not a ServerDHParams'
  const bits = bitLength(p)
  if (bits < MIN_DH_PRIME_BITS || bits > MAX_DH_PRIME_BITS) return `DH prime of ${bits} bits`
  if (g.length > MAX_DH_GENERATOR_BYTES || bitLength(g) < 2) return 'DH generator out of range'
  if (ys.length > p.length) return 'DH public value longer than the prime'
  return undefined
}

/**
 * Undefined if `message` is a payload the engine legitimately asks to sign (with `scheme`, when given),
 * else why not.
 */
export function checkSignPayload(message: Uint8Array, scheme?: number): string | undefined {
  if (isTls13CertificateVerify(message)) {
    if (scheme !== undefined && PKCS1_SCHEMES.has(scheme)) return 'PKCS#1 v1.5 is not allowed in TLS 1.3'
    return undefined
  }
  if (message.length > RANDOMS_LENGTH) {
    const params = message.subarray(RANDOMS_LENGTH)
    // Either shape will do (a 6144..8184-bit prime's length also starts with the byte 3 of named_curve).
    const ecdh = checkEcdhParams(params)
    if (ecdh === undefined) return undefined
    const dh = checkDhParams(params)
    if (dh === undefined) return undefined
    const problem = params[0] === EC_CURVE_TYPE_NAMED ? ecdh : dh
    return `not a TLS 1.2 ServerKeyExchange payload: ${problem}`
  }
  return `payload of ${message.length} bytes is not a TLS handshake signature input`
}
