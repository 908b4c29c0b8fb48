// TLS code points (RFC 8446 §B, RFC 5246, RFC 8422, RFC 7919, RFC 8449, RFC 7627, RFC 5746) and the names the
// engine reports.
import type { AeadName, GroupName, HashName } from '../crypto/provider.js'

export const ContentType = { changeCipherSpec: 20, alert: 21, handshake: 22, applicationData: 23 } as const

export const HandshakeType = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  newSessionTicket: 4,
  endOfEarlyData: 5,
  encryptedExtensions: 8,
  certificate: 11,
  serverKeyExchange: 12,
  certificateRequest: 13,
  serverHelloDone: 14,
  certificateVerify: 15,
  clientKeyExchange: 16,
  finished: 20,
  keyUpdate: 24,
  messageHash: 254,
} as const

export const ExtensionType = {
  serverName: 0,
  supportedGroups: 10,
  ecPointFormats: 11,
  signatureAlgorithms: 13,
  alpn: 16,
  padding: 21,
  extendedMasterSecret: 23,
  recordSizeLimit: 28,
  sessionTicket: 35,
  preSharedKey: 41,
  earlyData: 42,
  supportedVersions: 43,
  cookie: 44,
  pskKeyExchangeModes: 45,
  signatureAlgorithmsCert: 50,
  keyShare: 51,
  renegotiationInfo: 0xff01,
} as const

export const ProtocolVersion = { tls10: 0x0301, tls12: 0x0303, tls13: 0x0304 } as const

export const CipherSuite = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 0xc02b,
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 0xc02c,
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 0xc02f,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 0xc030,
  TLS_DHE_RSA_WITH_AES_128_GCM_SHA256: 0x009e,
  TLS_DHE_RSA_WITH_AES_256_GCM_SHA384: 0x009f,
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 0xcca8,
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 0xcca9,
  TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 0xccaa,
} as const

/** Signalling cipher suite values: not suites, flags in the ClientHello's list. */
export const SignallingSuite = {
  /** RFC 5746 §3.3: same meaning as an empty renegotiation_info extension. */
  TLS_EMPTY_RENEGOTIATION_INFO_SCSV: 0x00ff,
  /** RFC 7507: the client is retrying with a lower version than it supports. */
  TLS_FALLBACK_SCSV: 0x5600,
} as const

export const NamedGroup = {
  secp256r1: 0x0017,
  secp384r1: 0x0018,
  x25519: 0x001d,
  ffdhe2048: 0x0100,
  ffdhe3072: 0x0101,
  ffdhe4096: 0x0102,
} as const

export const SignatureScheme = {
  rsa_pkcs1_sha256: 0x0401,
  rsa_pkcs1_sha384: 0x0501,
  rsa_pkcs1_sha512: 0x0601,
  ecdsa_secp256r1_sha256: 0x0403,
  ecdsa_secp384r1_sha384: 0x0503,
  ecdsa_secp521r1_sha512: 0x0603,
  rsa_pss_rsae_sha256: 0x0804,
  rsa_pss_rsae_sha384: 0x0805,
  rsa_pss_rsae_sha512: 0x0806,
  ed25519: 0x0807,
  ed448: 0x0808,
  rsa_pss_pss_sha256: 0x0809,
  rsa_pss_pss_sha384: 0x080a,
  rsa_pss_pss_sha512: 0x080b,
} as const

/** Schemes allowed in a TLS 1.3 CertificateVerify (RFC 8446 §4.2.3: no PKCS#1 v1.5, no SHA-1). */
export const TLS13_SIGNATURE_SCHEMES: ReadonlySet<number> = new Set([
  SignatureScheme.ecdsa_secp256r1_sha256,
  SignatureScheme.ecdsa_secp384r1_sha384,
  SignatureScheme.ecdsa_secp521r1_sha512,
  SignatureScheme.rsa_pss_rsae_sha256,
  SignatureScheme.rsa_pss_rsae_sha384,
  SignatureScheme.rsa_pss_rsae_sha512,
  SignatureScheme.ed25519,
  SignatureScheme.ed448,
  SignatureScheme.rsa_pss_pss_sha256,
  SignatureScheme.rsa_pss_pss_sha384,
  SignatureScheme.rsa_pss_pss_sha512,
])

/** Schemes we sign a TLS 1.2 ServerKeyExchange with: no SHA-1, no SHA-224; ed25519 per RFC 8422 §5.1.3. */
export const TLS12_SIGNATURE_SCHEMES: ReadonlySet<number> = new Set([
  SignatureScheme.ecdsa_secp256r1_sha256,
  SignatureScheme.ecdsa_secp384r1_sha384,
  SignatureScheme.ecdsa_secp521r1_sha512,
  SignatureScheme.rsa_pss_rsae_sha256,
  SignatureScheme.rsa_pss_rsae_sha384,
  SignatureScheme.rsa_pss_rsae_sha512,
  SignatureScheme.rsa_pkcs1_sha256,
  SignatureScheme.rsa_pkcs1_sha384,
  SignatureScheme.rsa_pkcs1_sha512,
  SignatureScheme.ed25519,
])

export interface Tls13SuiteSpec {
  readonly code: number
  readonly name: string
  readonly aead: AeadName
  readonly hash: HashName
}

export const TLS13_SUITES: ReadonlyMap<number, Tls13SuiteSpec> = new Map(
  (
    [
      ['TLS_AES_128_GCM_SHA256', 'aes-128-gcm', 'sha256'],
      ['TLS_AES_256_GCM_SHA384', 'aes-256-gcm', 'sha384'],
      ['TLS_CHACHA20_POLY1305_SHA256', 'chacha20-poly1305', 'sha256'],
    ] as const
  ).map(([name, aead, hash]) => [CipherSuite[name], { code: CipherSuite[name], name, aead, hash }]),
)

export type KeyExchangeKind = 'ECDHE' | 'DHE'
/** The certificate key a suite needs: RSA, or an EC key (ECDSA or, per RFC 8422, EdDSA). */
export type AuthenticationKind = 'RSA' | 'ECDSA'

export interface Tls12SuiteSpec {
  readonly code: number
  readonly name: string
  readonly keyExchange: KeyExchangeKind
  readonly authentication: AuthenticationKind
  readonly aead: AeadName
  /** The PRF hash (RFC 5246 §5, RFC 5288 §3, RFC 7905 §2). */
  readonly hash: HashName
}

/** The TLS 1.2 suites we implement (ECDHE/DHE with AEAD only), in our default preference order. */
export const TLS12_SUITES: ReadonlyMap<number, Tls12SuiteSpec> = new Map(
  (
    [
      ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'ECDHE', 'ECDSA', 'aes-128-gcm', 'sha256'],
      ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'ECDHE', 'RSA', 'aes-128-gcm', 'sha256'],
      ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'ECDHE', 'ECDSA', 'aes-256-gcm', 'sha384'],
      ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'ECDHE', 'RSA', 'aes-256-gcm', 'sha384'],
      ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE', 'ECDSA', 'chacha20-poly1305', 'sha256'],
      ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE', 'RSA', 'chacha20-poly1305', 'sha256'],
      ['TLS_DHE_RSA_WITH_AES_128_GCM_SHA256', 'DHE', 'RSA', 'aes-128-gcm', 'sha256'],
      ['TLS_DHE_RSA_WITH_AES_256_GCM_SHA384', 'DHE', 'RSA', 'aes-256-gcm', 'sha384'],
      ['TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 'DHE', 'RSA', 'chacha20-poly1305', 'sha256'],
    ] as const
  ).map(([name, keyExchange, authentication, aead, hash]) => [
    CipherSuite[name],
    { code: CipherSuite[name], name, keyExchange, authentication, aead, hash },
  ]),
)

export const GROUP_NAMES: ReadonlyMap<number, GroupName> = new Map(
  Object.entries(NamedGroup).map(([name, code]) => [code, name as GroupName]),
)

export const ECC_GROUPS: ReadonlySet<number> = new Set([NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1])
export const FFDHE_GROUPS: ReadonlySet<number> = new Set([NamedGroup.ffdhe2048, NamedGroup.ffdhe3072, NamedGroup.ffdhe4096])

const SIGNATURE_SCHEME_NAMES = new Map(Object.entries(SignatureScheme).map(([name, code]) => [code as number, name]))

export function signatureSchemeName(code: number): string {
  return SIGNATURE_SCHEME_NAMES.get(code) ?? `0x${code.toString(16).padStart(4, '0')}`
}

export const VERSION_NAMES: ReadonlyMap<number, string> = new Map([
  [ProtocolVersion.tls12, 'TLSv1.2'],
  [ProtocolVersion.tls13, 'TLSv1.3'],
])

/** Largest TLSPlaintext.fragment (RFC 8446 §5.1). */
export const MAX_PLAINTEXT = 1 << 14
/** Largest TLSCiphertext.encrypted_record (RFC 8446 §5.2). */
export const MAX_CIPHERTEXT = MAX_PLAINTEXT + 256
/** Largest TLS 1.2 TLSCiphertext.fragment (RFC 5246 §6.2.3). */
export const MAX_CIPHERTEXT_TLS12 = MAX_PLAINTEXT + 2048

/** RFC 8446 §4.1.3: the last 8 bytes of ServerHello.random of a TLS 1.3 server that negotiated TLS 1.2. */
export const DOWNGRADE_SENTINEL_TLS12 = Buffer.from('444f574e47524401', 'hex')
