// TLS code points (RFC 8446 §B, RFC 7919, RFC 8449) and the names the engine reports.
import type { AeadName, GroupName, HashName } from '../crypto/provider.js'

export const ContentType = { changeCipherSpec: 20, alert: 21, handshake: 22, applicationData: 23 } as const

export const HandshakeType = {
  clientHello: 1,
  serverHello: 2,
  newSessionTicket: 4,
  endOfEarlyData: 5,
  encryptedExtensions: 8,
  certificate: 11,
  certificateRequest: 13,
  certificateVerify: 15,
  finished: 20,
  keyUpdate: 24,
  messageHash: 254,
} as const

export const ExtensionType = {
  serverName: 0,
  supportedGroups: 10,
  signatureAlgorithms: 13,
  alpn: 16,
  padding: 21,
  recordSizeLimit: 28,
  preSharedKey: 41,
  earlyData: 42,
  supportedVersions: 43,
  cookie: 44,
  pskKeyExchangeModes: 45,
  signatureAlgorithmsCert: 50,
  keyShare: 51,
} as const

export const ProtocolVersion = { tls10: 0x0301, tls12: 0x0303, tls13: 0x0304 } as const

export const CipherSuite = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
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

export const GROUP_NAMES: ReadonlyMap<number, GroupName> = new Map(
  Object.entries(NamedGroup).map(([name, code]) => [code, name as GroupName]),
)

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
