// The keyserver signs only the payloads the engine sends (DESIGN.md §1: no general signing oracle). checkSignPayload
// against real TLS 1.3 CertificateVerify inputs and TLS 1.2 ServerKeyExchange params built here from node:crypto keys,
// each malformed variant refused with its reason; then a live titus whose keyserver signs for real clients.
import t from 'tap'
import { createDiffieHellman, createECDH, getDiffieHellman, randomBytes } from 'node:crypto'
import { FFDHE2048_PRIME_HEX, FFDHE3072_PRIME_HEX, FFDHE4096_PRIME_HEX } from '../src/crypto/ffdhe-primes.js'
import { checkSignPayload } from '../src/keyserver/policy.js'
import { startEchoBackend } from './support/backends.js'
import { createCertSet } from './support/certs.js'
import { CLIENTS, gnutlsClient, nodeClient, opensslClient, type ClientResult } from './support/clients.js'
import { startTitus } from './support/titus.js'
import { u16, u8, vec16, vec8, x25519PublicKey } from './support/wire.js'

const SCHEME = {
  rsaPkcs1Sha1: 0x0201,
  ecdsaSha1: 0x0203,
  rsaPkcs1Sha256: 0x0401,
  rsaPkcs1Sha384: 0x0501,
  rsaPkcs1Sha512: 0x0601,
  ecdsaP256Sha256: 0x0403,
  ecdsaP384Sha384: 0x0503,
  rsaPssRsaeSha256: 0x0804,
  rsaPssRsaeSha384: 0x0805,
  ed25519: 0x0807,
  ed448: 0x0808,
  rsaPssPssSha256: 0x0809,
}
const GROUP = { secp256r1: 0x0017, secp384r1: 0x0018, secp521r1: 0x0019, x25519: 0x001d, x448: 0x001e, ffdhe2048: 0x0100 }
const NAMED_CURVE = 3

type Asserts = Pick<typeof t, 'equal' | 'match'>

const BOTH_VERSIONS = { tls12: true, tls13: true }

function accepts(t: Asserts, message: Buffer, scheme: number, label: string) {
  t.equal(checkSignPayload(message, scheme, BOTH_VERSIONS), undefined, `accepted: ${label}`)
}

function refuses(t: Asserts, message: Buffer, scheme: number, reason: RegExp, label: string, versions = BOTH_VERSIONS) {
  t.match(checkSignPayload(message, scheme, versions), reason, `refused: ${label}`)
}

// ---------------------------------------------------------------------------------------------------------
// TLS 1.3 CertificateVerify input (RFC 8446 §4.4.3)

const SERVER_CONTEXT = Buffer.from('TLS 1.3, server CertificateVerify\0', 'latin1')
const certificateVerifyInput = (hash: Buffer, { spaces = 64, context = SERVER_CONTEXT } = {}) => Buffer.concat([Buffer.alloc(spaces, 0x20), context, hash])

t.test('TLS 1.3 CertificateVerify input', async t => {
  const schemes = [SCHEME.rsaPssRsaeSha256, SCHEME.rsaPssRsaeSha384, SCHEME.ecdsaP256Sha256, SCHEME.ecdsaP384Sha384, SCHEME.ed25519]
  // The transcript hash is the suite's: every scheme signs 32 bytes under a SHA-256 suite and 48 under TLS_AES_256_GCM_SHA384.
  for (const length of [32, 48]) for (const scheme of schemes) accepts(t, certificateVerifyInput(randomBytes(length)), scheme, `${length}-byte hash, scheme 0x${scheme.toString(16)}`)

  const hash = randomBytes(32)
  for (const scheme of [SCHEME.rsaPkcs1Sha256, SCHEME.rsaPkcs1Sha384, SCHEME.rsaPkcs1Sha512, SCHEME.rsaPkcs1Sha1, SCHEME.ecdsaSha1]) {
    refuses(t, certificateVerifyInput(hash), scheme, /is not allowed in a TLS 1\.3 CertificateVerify/, `scheme 0x${scheme.toString(16)} in TLS 1.3`)
  }
  for (const length of [0, 20, 31, 33, 47, 49, 64]) {
    refuses(t, certificateVerifyInput(randomBytes(length)), SCHEME.ecdsaP256Sha256, new RegExp(`with a ${length}-byte transcript hash`), `${length}-byte hash`)
  }
  const clientContext = Buffer.from('TLS 1.3, client CertificateVerify\0', 'latin1')
  refuses(t, certificateVerifyInput(hash, { context: clientContext }), SCHEME.ecdsaP256Sha256, /not a TLS 1\.2 ServerKeyExchange payload/, 'the client context string')
  refuses(t, certificateVerifyInput(hash, { spaces: 63 }), SCHEME.ecdsaP256Sha256, /not a TLS 1\.2 ServerKeyExchange payload/, '63 spaces')
  refuses(t, certificateVerifyInput(hash, { context: SERVER_CONTEXT.subarray(0, -1) }), SCHEME.ecdsaP256Sha256, /not a TLS 1\.2/, 'no zero byte after the context')
  refuses(t, randomBytes(130), SCHEME.ecdsaP256Sha256, /not a TLS 1\.2 ServerKeyExchange payload/, '130 random bytes')
})

// ---------------------------------------------------------------------------------------------------------
// TLS 1.2 ServerKeyExchange input (RFC 5246 §7.4.3): client_random || server_random || params

const serverKeyExchangeInput = (params: Buffer) => Buffer.concat([randomBytes(64), params])
const ecdhParams = (group: number, point: Buffer, curveType = NAMED_CURVE) => Buffer.concat([u8(curveType), u16(group), vec8(point)])
const dhParams = (p: Buffer, g: Buffer, ys: Buffer) => Buffer.concat([vec16(p), vec16(g), vec16(ys)])

function ecPoint(curve: 'prime256v1' | 'secp384r1' | 'secp521r1', format: 'uncompressed' | 'compressed' = 'uncompressed'): Buffer {
  const ecdh = createECDH(curve)
  ecdh.generateKeys()
  return ecdh.getPublicKey(null, format)
}

t.test('a vhost with a TLS version off gets no signature for that version', async t => {
  const tls13Input = certificateVerifyInput(randomBytes(32))
  refuses(t, tls13Input, SCHEME.ecdsaP256Sha256, /TLS 1\.3 off/, 'TLS 1.3 input, TLS 1.3 off', { tls12: true, tls13: false })
  t.equal(checkSignPayload(tls13Input, SCHEME.ecdsaP256Sha256, { tls12: false, tls13: true }), undefined, 'accepted with TLS 1.3 on and TLS 1.2 off')
})

t.test('TLS 1.2 ECDHE params', async t => {
  const valid: [string, number, Buffer][] = [
    ['x25519', GROUP.x25519, x25519PublicKey()],
    ['secp256r1', GROUP.secp256r1, ecPoint('prime256v1')],
    ['secp384r1', GROUP.secp384r1, ecPoint('secp384r1')],
  ]
  // PKCS#1 v1.5 is fine in TLS 1.2.
  const schemes = [SCHEME.ecdsaP256Sha256, SCHEME.ecdsaP384Sha384, SCHEME.rsaPssRsaeSha256, SCHEME.rsaPkcs1Sha256, SCHEME.rsaPkcs1Sha512, SCHEME.ed25519]
  for (const [name, group, point] of valid) for (const scheme of schemes) accepts(t, serverKeyExchangeInput(ecdhParams(group, point)), scheme, `${name}, scheme 0x${scheme.toString(16)}`)

  const p256 = ecPoint('prime256v1')
  const x25519 = x25519PublicKey()
  const scheme = SCHEME.ecdsaP256Sha256
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.x25519, x25519)), scheme, /TLS 1\.2 off/, 'a well-formed payload for a vhost with TLS 1.2 off', { tls12: false, tls13: true })
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp256r1, p256, 1)), scheme, /curve_type is not named_curve/, 'explicit_prime curve type')
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp256r1, p256, 2)), scheme, /curve_type is not named_curve/, 'explicit_char2 curve type')
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp521r1, ecPoint('secp521r1'))), scheme, /named group 0x0019 is not a curve titus uses/, 'secp521r1')
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.x448, randomBytes(56))), scheme, /named group 0x001e is not a curve titus uses/, 'x448')
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.ffdhe2048, p256)), scheme, /named group 0x0100 is not a curve titus uses/, 'an ffdhe group as a curve')
  for (const length of [0, 31, 33, 65]) {
    refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.x25519, randomBytes(length))), scheme, new RegExp(`x25519 public key of ${length} bytes`), `x25519 key of ${length} bytes`)
  }
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp256r1, ecPoint('prime256v1', 'compressed'))), scheme, /secp256r1 key share is not an uncompressed point/, 'compressed P-256 point')
  const hybrid = Buffer.from(p256)
  hybrid[0] = 6 | (p256[64]! & 1)
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp256r1, hybrid)), scheme, /not an uncompressed point/, 'hybrid P-256 point')
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp256r1, ecPoint('secp384r1'))), scheme, /secp256r1 key share is not an uncompressed point/, 'a P-384 point named secp256r1')
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp384r1, p256)), scheme, /secp384r1 key share is not an uncompressed point/, 'a P-256 point named secp384r1')
  const offCurve = Buffer.from(p256)
  offCurve[64]! ^= 1
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp256r1, offCurve)), scheme, /secp256r1 point is not on the curve/, 'P-256 point off the curve')
  const offCurve384 = ecPoint('secp384r1')
  offCurve384[96]! ^= 1
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp384r1, offCurve384)), scheme, /secp384r1 point is not on the curve/, 'P-384 point off the curve')
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp256r1, Buffer.concat([u8(4), Buffer.alloc(64)]))), scheme, /not on the curve/, 'P-256 (0, 0)')
  refuses(t, serverKeyExchangeInput(Buffer.concat([ecdhParams(GROUP.x25519, x25519), u8(0)])), scheme, /trailing bytes/, 'a byte after the x25519 key')
  refuses(t, serverKeyExchangeInput(Buffer.concat([ecdhParams(GROUP.secp256r1, p256), p256])), scheme, /trailing bytes/, 'a second point after the first')
  refuses(t, serverKeyExchangeInput(ecdhParams(GROUP.secp256r1, p256).subarray(0, -1)), scheme, /truncated/, 'a point one byte short of its length')
  refuses(t, serverKeyExchangeInput(Buffer.of(NAMED_CURVE, 0x00)), scheme, /truncated/, 'params cut inside the named group')

  const params = ecdhParams(GROUP.x25519, x25519)
  for (const bad of [SCHEME.rsaPkcs1Sha1, SCHEME.ecdsaSha1, SCHEME.ed448, SCHEME.rsaPssPssSha256, 0xfefe]) {
    refuses(t, serverKeyExchangeInput(params), bad, /is not one titus signs a TLS 1\.2 ServerKeyExchange with/, `scheme 0x${bad.toString(16)} in TLS 1.2`)
  }
  for (const length of [0, 32, 64]) refuses(t, randomBytes(length), scheme, new RegExp(`payload of ${length} bytes is not a TLS handshake signature input`), `${length} bytes`)
})

function leftPad(value: Buffer, length: number): Buffer {
  return Buffer.concat([Buffer.alloc(length - value.length), value])
}

// A public value for prime p and generator 2, as the engine sends it: left-padded to the prime's length.
function dhPublicValue(p: Buffer): Buffer {
  const dh = createDiffieHellman(p, Buffer.of(2))
  dh.setPrivateKey(randomBytes(32))
  return leftPad(dh.generateKeys(), p.length)
}

function minusOne(n: Buffer): Buffer {
  const out = Buffer.from(n)
  out[out.length - 1]! -= 1 // n is odd here: no borrow
  return out
}

t.test('TLS 1.2 DHE params', async t => {
  const g = Buffer.of(2)
  const primes: [string, Buffer][] = [
    ['ffdhe2048', Buffer.from(FFDHE2048_PRIME_HEX, 'hex')],
    ['ffdhe3072', Buffer.from(FFDHE3072_PRIME_HEX, 'hex')],
    ['ffdhe4096', Buffer.from(FFDHE4096_PRIME_HEX, 'hex')],
    // dhgroup 14/15/16 or a PEM file: other primes, 2048 to 8192 bits.
    ['MODP 2048 (RFC 3526 group 14)', getDiffieHellman('modp14').getPrime()],
    ['MODP 3072 (RFC 3526 group 15)', getDiffieHellman('modp15').getPrime()],
    // A 768-byte prime: its length starts with the byte 3, as named_curve does.
    ['MODP 6144 (RFC 3526 group 17)', getDiffieHellman('modp17').getPrime()],
    ['MODP 8192 (RFC 3526 group 18)', getDiffieHellman('modp18').getPrime()],
  ]
  for (const [name, p] of primes) {
    accepts(t, serverKeyExchangeInput(dhParams(p, g, dhPublicValue(p))), SCHEME.rsaPssRsaeSha256, name)
    accepts(t, serverKeyExchangeInput(dhParams(p, g, dhPublicValue(p))), SCHEME.rsaPkcs1Sha256, `${name}, PKCS#1 v1.5`)
  }

  const p = getDiffieHellman('modp15').getPrime()
  const ys = dhPublicValue(p)
  const scheme = SCHEME.rsaPssRsaeSha256
  const refusesDh = (prime: Buffer, generator: Buffer, publicValue: Buffer, reason: RegExp, label: string) =>
    refuses(t, serverKeyExchangeInput(dhParams(prime, generator, publicValue)), scheme, reason, label)

  const even = minusOne(p)
  refusesDh(even, g, dhPublicValue(p), /DH prime is even/, 'an even prime')
  const small = getDiffieHellman('modp2').getPrime()
  refusesDh(small, g, dhPublicValue(small), /DH prime of 1024 bits/, 'a 1024-bit prime (RFC 2409 group 2)')
  const big = Buffer.concat([Buffer.of(0xff), getDiffieHellman('modp18').getPrime()])
  refusesDh(big, g, leftPad(ys, big.length), /DH prime of 8200 bits/, 'an 8200-bit prime')
  refusesDh(Buffer.concat([Buffer.of(0), p]), g, Buffer.concat([Buffer.of(0), ys]), /DH prime of 0 bits \(2048 to 8192 without leading zeros\)/, 'a leading zero on the prime')
  refusesDh(Buffer.alloc(0), g, ys, /DH prime of 0 bits/, 'an empty prime')
  for (const [generator, label] of [
    [Buffer.alloc(0), 'empty'],
    [Buffer.of(0), '0'],
    [Buffer.of(1), '1'],
    [Buffer.of(0, 2), '2 with a leading zero'],
    [Buffer.of(1, 0, 0, 0, 0), '2^32'],
    [minusOne(p), 'p-1'],
  ] as [Buffer, string][]) {
    refusesDh(p, generator, ys, /DH generator must be 2 to 2\^32-1/, `generator ${label}`)
  }
  const one = leftPad(Buffer.of(1), p.length)
  for (const [value, label] of [
    [Buffer.alloc(p.length), 'Ys = 0'],
    [one, 'Ys = 1'],
    [minusOne(p), 'Ys = p-1'],
    [p, 'Ys = p'],
    [Buffer.alloc(p.length, 0xff), 'Ys > p'],
  ] as [Buffer, string][]) {
    refusesDh(p, g, value, /DH public value out of range/, label)
  }
  refusesDh(p, g, ys.subarray(1), /DH key share has the wrong length/, 'Ys one byte shorter than p')
  refusesDh(p, g, Buffer.concat([Buffer.of(0), ys]), /DH key share has the wrong length/, 'Ys one byte longer than p')
  refuses(t, serverKeyExchangeInput(Buffer.concat([dhParams(p, g, ys), u8(0)])), scheme, /ServerDHParams \(decode_error: trailing bytes\)/, 'a byte after Ys')
  refuses(t, serverKeyExchangeInput(dhParams(p, g, ys).subarray(0, -1)), scheme, /ServerDHParams \(decode_error: message truncated\)/, 'Ys one byte short of its length')
  refuses(t, serverKeyExchangeInput(Buffer.concat([vec16(p), vec16(g)])), scheme, /ServerDHParams \(decode_error: message truncated\)/, 'no Ys')
  // The 6144-bit prime whose length starts like named_curve is still checked as DH params.
  const p6144 = getDiffieHellman('modp17').getPrime()
  refusesDh(p6144, g, one.subarray(0, 0), /ServerDHParams \(DH key share has the wrong length\)/, 'a 6144-bit prime with an empty Ys')
})

// ---------------------------------------------------------------------------------------------------------
// The engine's real payloads pass: the keyserver signs for real clients, TLS 1.3 and TLS 1.2 (ECDHE and DHE).

t.test('a live titus still completes TLS 1.3 and TLS 1.2 handshakes with real clients', async t => {
  const certs = createCertSet(t)
  const echo = await startEchoBackend(t)
  // Configured DH parameters: RFC 3526 group 15 for clients without RFC 7919 groups, ffdhe3072 for those with.
  const args = ['--dhgroup', '15:ffdhe3072', '--ecdhcurve', 'x25519:secp256r1:secp384r1']
  const rsa = await startTitus(t, { backendPort: echo.port, key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain, args })
  const p256 = await startTitus(t, { backendPort: echo.port, key: certs.leaves.p256.key, cert: certs.leaves.p256.chain, args })
  const base = (port: number) => ({ port, caFile: certs.caFile })

  for (const [name, client] of Object.entries(CLIENTS)) {
    const r = await client(t, base(rsa.port))
    t.ok(r.ok, `TLS 1.3 with ${name} (RSA-PSS CertificateVerify)`, { detail: r.detail })
    t.equal(r.version, 'TLSv1.3', `${name}: TLS 1.3`)
  }
  // An ECDSA P-256 key signs a 48-byte transcript hash under TLS_AES_256_GCM_SHA384.
  const sha384 = await opensslClient(t, { ...base(p256.port), suite: 'TLS_AES_256_GCM_SHA384' })
  t.ok(sha384.ok, 'TLS 1.3, TLS_AES_256_GCM_SHA384 with an ECDSA P-256 certificate', { detail: sha384.detail })
  t.equal(sha384.suite, 'TLS_AES_256_GCM_SHA384')

  const cases: [string, Promise<ClientResult>, string?][] = [
    ['ECDHE x25519, RSA', opensslClient(t, { ...base(rsa.port), tls12: true, suite: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', groups: ['x25519'] }), 'x25519'],
    ['ECDHE secp384r1, RSA', nodeClient(t, { ...base(rsa.port), tls12: true, suite: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', groups: ['secp384r1'] }), 'secp384r1'],
    ['ECDHE secp256r1, ECDSA', gnutlsClient(t, { ...base(p256.port), tls12: true, suite: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', groups: ['secp256r1'] }), 'secp256r1'],
    ['DHE with the configured 3072-bit MODP prime', opensslClient(t, { ...base(rsa.port), tls12: true, suite: 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256' })],
    ['DHE ffdhe3072 (RFC 7919)', gnutlsClient(t, { ...base(rsa.port), tls12: true, suite: 'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384', groups: ['ffdhe3072'] }), 'ffdhe3072'],
  ]
  for (const [label, pending, group] of cases) {
    const r = await pending
    t.ok(r.ok, `TLS 1.2 ${label}`, { detail: r.detail })
    t.equal(r.version, 'TLSv1.2', `${label}: TLS 1.2`)
    if (group) t.equal(r.group, group, `${label}: group`)
  }
  for (const titus of [rsa, p256]) t.notOk(titus.log.some(line => /refused to sign/.test(line)), 'the keyserver refused nothing', { log: titus.log })
})
