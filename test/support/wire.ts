// A small TLS 1.3 and 1.2 wire encoder/decoder for hand-made (and hand-broken) ClientHellos and for reading what the
// server answers. Written from RFC 8446 sections 4 and 5, RFC 5246 section 7.4 and RFC 8422 section 5.
import { createPublicKey, diffieHellman, generateKeyPairSync, randomBytes } from 'node:crypto'

export const CONTENT_TYPE = { changeCipherSpec: 20, alert: 21, handshake: 22, applicationData: 23 } as const

export const HANDSHAKE_TYPE = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  encryptedExtensions: 8,
  certificate: 11,
  serverKeyExchange: 12,
  serverHelloDone: 14,
  clientKeyExchange: 16,
  finished: 20,
  keyUpdate: 24,
} as const

export const EXTENSION = {
  serverName: 0,
  supportedGroups: 10,
  ecPointFormats: 11,
  signatureAlgorithms: 13,
  alpn: 16,
  padding: 21,
  extendedMasterSecret: 23,
  recordSizeLimit: 28,
  preSharedKey: 41,
  earlyData: 42,
  supportedVersions: 43,
  cookie: 44,
  pskKeyExchangeModes: 45,
  keyShare: 51,
  renegotiationInfo: 0xff01,
} as const

export const GROUP_NAMES = ['x25519', 'secp256r1', 'secp384r1', 'ffdhe2048', 'ffdhe3072', 'ffdhe4096'] as const
export type GroupName = (typeof GROUP_NAMES)[number]
export const GROUP_CODE: Record<GroupName, number> = {
  x25519: 0x001d,
  secp256r1: 0x0017,
  secp384r1: 0x0018,
  ffdhe2048: 0x0100,
  ffdhe3072: 0x0101,
  ffdhe4096: 0x0102,
}

export const SUITE_NAMES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const
export type SuiteName = (typeof SUITE_NAMES)[number]
export const SUITE_CODE: Record<SuiteName, number> = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
}

// TLS 1.2 suites titus implements, by IANA name, with OpenSSL's name (what -cipher, curl and node take).
export const SUITE12_NAMES = [
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
] as const
export type Suite12Name = (typeof SUITE12_NAMES)[number]
export const SUITE12_CODE: Record<Suite12Name, number> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 0xc02b,
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 0xc02c,
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 0xcca9,
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 0xc02f,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 0xc030,
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 0xcca8,
  TLS_DHE_RSA_WITH_AES_128_GCM_SHA256: 0x009e,
  TLS_DHE_RSA_WITH_AES_256_GCM_SHA384: 0x009f,
  TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 0xccaa,
}
export function opensslSuiteName(suite: Suite12Name): string {
  const [, kx, auth, cipher] = /^TLS_(ECDHE|DHE)_(RSA|ECDSA)_WITH_(.*)$/.exec(suite)!
  const name = { AES_128_GCM_SHA256: 'AES128-GCM-SHA256', AES_256_GCM_SHA384: 'AES256-GCM-SHA384', CHACHA20_POLY1305_SHA256: 'CHACHA20-POLY1305' }[cipher!]
  return `${kx}-${auth}-${name}`
}
export function suite12OfOpensslName(name: string | undefined): Suite12Name | undefined {
  return SUITE12_NAMES.find(s => opensslSuiteName(s) === name)
}

export const ALERT = {
  closeNotify: 0,
  unexpectedMessage: 10,
  badRecordMac: 20,
  recordOverflow: 22,
  handshakeFailure: 40,
  illegalParameter: 47,
  decodeError: 50,
  decryptError: 51,
  protocolVersion: 70,
  inappropriateFallback: 86,
  noRenegotiation: 100,
  missingExtension: 109,
  unrecognizedName: 112,
  noApplicationProtocol: 120,
} as const

// SHA-256 of "HelloRetryRequest" (RFC 8446 4.1.3): the ServerHello.random that marks an HRR.
export const HELLO_RETRY_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex')

const SIGNATURE_SCHEMES = [0x0403, 0x0503, 0x0804, 0x0805, 0x0806, 0x0807, 0x0401]

export function u8(n: number): Buffer {
  return Buffer.of(n)
}
export function u16(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}
function u24(n: number): Buffer {
  return Buffer.of(n >> 16, (n >> 8) & 0xff, n & 0xff)
}
export function vec8(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  return Buffer.concat([u8(body.length), body])
}
export function vec16(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  return Buffer.concat([u16(body.length), body])
}

export function record(type: number, body: Buffer, version = 0x0303): Buffer {
  return Buffer.concat([u8(type), u16(version), u16(body.length), body])
}

export function handshakeMessage(type: number, body: Buffer): Buffer {
  return Buffer.concat([u8(type), u24(body.length), body])
}

export function extension(type: number, body: Buffer): Buffer {
  return Buffer.concat([u16(type), vec16(body)])
}

export const ext = {
  supportedVersions: (versions: number[]) => extension(EXTENSION.supportedVersions, vec8(...versions.map(u16))),
  supportedGroups: (groups: number[]) => extension(EXTENSION.supportedGroups, vec16(...groups.map(u16))),
  signatureAlgorithms: (schemes = SIGNATURE_SCHEMES) => extension(EXTENSION.signatureAlgorithms, vec16(...schemes.map(u16))),
  keyShare: (shares: { group: number; key: Buffer }[]) =>
    extension(EXTENSION.keyShare, vec16(...shares.map(s => Buffer.concat([u16(s.group), vec16(s.key)])))),
  serverName: (host: string) => extension(EXTENSION.serverName, vec16(u8(0), vec16(Buffer.from(host)))),
  alpn: (protocols: string[]) => extension(EXTENSION.alpn, vec16(...protocols.map(p => vec8(Buffer.from(p))))),
  ecPointFormats: (formats = [0]) => extension(EXTENSION.ecPointFormats, vec8(...formats.map(u8))),
  extendedMasterSecret: () => extension(EXTENSION.extendedMasterSecret, Buffer.alloc(0)),
  renegotiationInfo: (renegotiatedConnection = Buffer.alloc(0)) => extension(EXTENSION.renegotiationInfo, vec8(renegotiatedConnection)),
  recordSizeLimit: (limit: number) => extension(EXTENSION.recordSizeLimit, u16(limit)),
  // psk_dhe_ke (1) by default.
  pskKeyExchangeModes: (modes = [1]) => extension(EXTENSION.pskKeyExchangeModes, vec8(...modes.map(u8))),
  // One made-up identity with a made-up 32-byte binder: well-formed, but no server knows it (RFC 8446 4.2.11).
  preSharedKey: () => extension(EXTENSION.preSharedKey, Buffer.concat([vec16(vec16(randomBytes(16)), randomBytes(4)), vec16(vec8(randomBytes(32)))])),
  earlyData: () => extension(EXTENSION.earlyData, Buffer.alloc(0)),
  cookie: (cookie: Buffer) => extension(EXTENSION.cookie, vec16(cookie)),
  padding: (length: number) => extension(EXTENSION.padding, Buffer.alloc(length)),
}

export function x25519PublicKey(): Buffer {
  const { publicKey } = generateKeyPairSync('x25519', { publicKeyEncoding: { format: 'jwk' } })
  return Buffer.from(publicKey.x!, 'base64url')
}

// An X25519 key pair for a client that finishes the handshake: the public key as sent in key_share, and the shared
// secret with the server's share.
export function x25519KeyPair(): { publicKey: Buffer; sharedSecret: (serverShare: Buffer) => Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('x25519', { publicKeyEncoding: { format: 'jwk' } })
  const sharedSecret = (serverShare: Buffer) =>
    diffieHellman({ privateKey, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: serverShare.toString('base64url') }, format: 'jwk' }) })
  return { publicKey: Buffer.from(publicKey.x!, 'base64url'), sharedSecret }
}

export function p256PublicKey(): Buffer {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { format: 'jwk' } })
  return Buffer.concat([u8(4), Buffer.from(publicKey.x!, 'base64url'), Buffer.from(publicKey.y!, 'base64url')])
}

export interface ClientHelloFields {
  legacyVersion?: number
  // Default: fresh random values (a second ClientHello after a HelloRetryRequest repeats the first's).
  random?: Buffer
  sessionId?: Buffer
  cipherSuites?: number[]
  // Default: null only.
  compressionMethods?: number[]
  extensions?: Buffer[]
}

// The extensions of a plain TLS 1.3 ClientHello offering x25519 only.
export function standardExtensions(): Buffer[] {
  return [
    ext.supportedVersions([0x0304]),
    ext.supportedGroups([GROUP_CODE.x25519]),
    ext.signatureAlgorithms(),
    ext.keyShare([{ group: GROUP_CODE.x25519, key: x25519PublicKey() }]),
  ]
}

export function clientHello(fields: ClientHelloFields = {}): Buffer {
  const body = Buffer.concat([
    u16(fields.legacyVersion ?? 0x0303),
    fields.random ?? randomBytes(32),
    vec8(fields.sessionId ?? randomBytes(32)), // legacy_session_id, as middlebox-compatible clients send
    vec16(...(fields.cipherSuites ?? Object.values(SUITE_CODE)).map(u16)),
    vec8(...(fields.compressionMethods ?? [0]).map(u8)), // legacy_compression_methods
    vec16(...(fields.extensions ?? standardExtensions())),
  ])
  return handshakeMessage(HANDSHAKE_TYPE.clientHello, body)
}

export interface TlsRecord {
  type: number
  version: number
  body: Buffer
}

// Splits a byte stream into whole records; `rest` is an incomplete tail.
export function parseRecords(bytes: Buffer): { records: TlsRecord[]; rest: Buffer } {
  const records: TlsRecord[] = []
  let at = 0
  while (bytes.length - at >= 5) {
    const length = bytes.readUInt16BE(at + 3)
    if (bytes.length - at < 5 + length) break
    records.push({ type: bytes[at]!, version: bytes.readUInt16BE(at + 1), body: bytes.subarray(at + 5, at + 5 + length) })
    at += 5 + length
  }
  return { records, rest: bytes.subarray(at) }
}

export interface HandshakeMessage {
  type: number
  body: Buffer
}

export function parseHandshakeMessages(bytes: Buffer): HandshakeMessage[] {
  const messages: HandshakeMessage[] = []
  for (let at = 0; at + 4 <= bytes.length; ) {
    const length = bytes.readUIntBE(at + 1, 3)
    messages.push({ type: bytes[at]!, body: bytes.subarray(at + 4, at + 4 + length) })
    at += 4 + length
  }
  return messages
}

function parseExtensions(bytes: Buffer): Map<number, Buffer> {
  const found = new Map<number, Buffer>()
  for (let at = 0; at + 4 <= bytes.length; ) {
    const length = bytes.readUInt16BE(at + 2)
    found.set(bytes.readUInt16BE(at), bytes.subarray(at + 4, at + 4 + length))
    at += 4 + length
  }
  return found
}

export interface ServerHelloInfo {
  random: Buffer
  // Extension types in the order sent.
  extensions: number[]
  // Selected ALPN protocol (TLS 1.2 sends it in the ServerHello), or null.
  alpn: string | null
  helloRetryRequest: boolean
  cipherSuite: number
  // From supported_versions; undefined when absent (TLS 1.2 or older).
  version?: number
  // The selected group (HRR: the group the server asks for).
  group?: number
  // The server's key_share key_exchange (absent in an HRR).
  keyExchange?: Buffer
  // The cookie of an HRR.
  cookie?: Buffer
}

// body: the ServerHello handshake body, without the 4-byte message header.
export function parseServerHello(body: Buffer): ServerHelloInfo {
  const random = body.subarray(2, 34)
  const sessionIdLength = body[34]!
  let at = 35 + sessionIdLength
  const cipherSuite = body.readUInt16BE(at)
  at += 3 // cipher suite, compression method
  const block = at + 2 <= body.length ? body.subarray(at + 2, at + 2 + body.readUInt16BE(at)) : Buffer.alloc(0)
  const extensions = parseExtensions(block)
  const versions = extensions.get(EXTENSION.supportedVersions)
  const keyShare = extensions.get(EXTENSION.keyShare)
  const alpn = extensions.get(EXTENSION.alpn)
  return {
    random: Buffer.from(random),
    extensions: [...extensions.keys()],
    alpn: alpn ? alpn.subarray(3, 3 + alpn[2]!).toString() : null,
    helloRetryRequest: random.equals(HELLO_RETRY_RANDOM),
    cipherSuite,
    version: versions?.readUInt16BE(0),
    group: keyShare?.readUInt16BE(0),
    keyExchange: keyShare && keyShare.length > 2 ? keyShare.subarray(4, 4 + keyShare.readUInt16BE(2)) : undefined,
    cookie: extensions.get(EXTENSION.cookie)?.subarray(2),
  }
}

// body: the EncryptedExtensions handshake body. Returns its extensions by type.
export function encryptedExtensions(body: Buffer): Map<number, Buffer> {
  return parseExtensions(body.subarray(2, 2 + body.readUInt16BE(0)))
}

// body: the EncryptedExtensions handshake body. Returns the selected ALPN protocol, or null.
export function alpnFromEncryptedExtensions(body: Buffer): string | null {
  const alpn = encryptedExtensions(body).get(EXTENSION.alpn)
  return alpn ? alpn.subarray(3, 3 + alpn[2]!).toString() : null
}

export function nameOfGroup(code: number | undefined): GroupName | undefined {
  return GROUP_NAMES.find(name => GROUP_CODE[name] === code)
}

export function nameOfSuite(code: number | undefined): SuiteName | undefined {
  return SUITE_NAMES.find(name => SUITE_CODE[name] === code)
}

export function nameOfSuite12(code: number | undefined): Suite12Name | undefined {
  return SUITE12_NAMES.find(name => SUITE12_CODE[name] === code)
}

// The group of a TLS 1.2 ServerKeyExchange body: the named curve, or ffdhe<bits> for DHE parameters.
export function groupOfServerKeyExchange(body: Buffer): GroupName | undefined {
  if (body[0] === 3) return nameOfGroup(body.readUInt16BE(1))
  const primeBits = body.readUInt16BE(0) * 8
  return GROUP_NAMES.find(name => name === `ffdhe${primeBits}`)
}

// RFC 8446 4.1.3: the end of ServerHello.random when a TLS 1.3 server negotiated TLS 1.2.
export const DOWNGRADE_SENTINEL_TLS12 = Buffer.from('444f574e47524401', 'hex')

export function nameOfAlert(code: number | undefined): string {
  return Object.entries(ALERT).find(([, value]) => value === code)?.[0] ?? `alert ${code}`
}

// A TLS 1.2 ServerKeyExchange body: ServerECDHParams (RFC 8422 5.4, named_curve) or ServerDHParams (RFC 5246 7.4.3).
export type ServerKeyExchangeParams =
  | { kind: 'ECDHE'; group: number; publicKey: Buffer }
  | { kind: 'DHE'; p: Buffer; g: Buffer; publicKey: Buffer }

export function parseServerKeyExchange12(body: Buffer, kind: 'ECDHE' | 'DHE'): ServerKeyExchangeParams {
  if (kind === 'ECDHE') return { kind, group: body.readUInt16BE(1), publicKey: body.subarray(4, 4 + body[3]!) }
  const fields: Buffer[] = []
  for (let at = 0; fields.length < 3; at += 2 + body.readUInt16BE(at)) fields.push(body.subarray(at + 2, at + 2 + body.readUInt16BE(at)))
  const [p, g, publicKey] = fields as [Buffer, Buffer, Buffer]
  return { kind, p, g, publicKey }
}
