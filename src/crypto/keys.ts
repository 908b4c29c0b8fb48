// Certificate and key loading from PEM text (the caller reads the files), and the in-process Signer.
// The keyserver implements the same Signer interface over IPC, so the TLS engine never holds a key.
import { constants, createPrivateKey, sign, type KeyObject } from 'node:crypto'
import type { AuthenticationKind } from '../tls/constants.js'
import type { Signer } from '../tls/types.js'

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g

/** All CERTIFICATE blocks as DER, in file order (leaf first). Refuses text that contains a private key. */
export function parseCertificateChain(pem: string): Uint8Array[] {
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
    throw new Error('certificate file contains a PRIVATE KEY block; keep the key in its own file')
  }
  const chain: Uint8Array[] = []
  for (const [, label, body] of pem.matchAll(PEM_BLOCK)) {
    if (label !== 'CERTIFICATE') continue
    const der = Buffer.from(body.replace(/\s+/g, ''), 'base64')
    if (der.length === 0 || der[0] !== 0x30) throw new Error('CERTIFICATE block is not valid base64 DER')
    chain.push(der)
  }
  if (chain.length === 0) throw new Error('no CERTIFICATE block found')
  return chain
}

interface SchemeSpec {
  readonly code: number
  readonly digest: string | null
  readonly pssSaltLength?: number
}

// Signature schemes by key type, in our preference order. PKCS#1 v1.5 is for TLS 1.2 clients without PSS;
// the TLS 1.3 engine never picks it (RFC 8446 §4.2.3).
const RSA_SCHEMES: SchemeSpec[] = [
  { code: 0x0804, digest: 'sha256', pssSaltLength: 32 }, // rsa_pss_rsae_sha256
  { code: 0x0805, digest: 'sha384', pssSaltLength: 48 }, // rsa_pss_rsae_sha384
  { code: 0x0806, digest: 'sha512', pssSaltLength: 64 }, // rsa_pss_rsae_sha512
  { code: 0x0401, digest: 'sha256' }, // rsa_pkcs1_sha256
  { code: 0x0501, digest: 'sha384' }, // rsa_pkcs1_sha384
  { code: 0x0601, digest: 'sha512' }, // rsa_pkcs1_sha512
]
const EC_SCHEMES: Record<string, SchemeSpec> = {
  prime256v1: { code: 0x0403, digest: 'sha256' }, // ecdsa_secp256r1_sha256
  secp384r1: { code: 0x0503, digest: 'sha384' }, // ecdsa_secp384r1_sha384
  secp521r1: { code: 0x0603, digest: 'sha512' }, // ecdsa_secp521r1_sha512
}
const ED25519_SCHEME: SchemeSpec = { code: 0x0807, digest: null }
const MIN_RSA_BITS = 2048

interface KeyProfile {
  readonly schemes: SchemeSpec[]
  /** The TLS 1.2 suites the key can authenticate (RFC 8422 §5.1.3: ECDSA suites take Ed25519 keys too). */
  readonly authentication: AuthenticationKind
}

function profileOf(key: KeyObject): KeyProfile {
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
      if (bits < MIN_RSA_BITS) throw new Error(`RSA key of ${bits} bits; at least ${MIN_RSA_BITS} are needed`)
      return { schemes: RSA_SCHEMES, authentication: 'RSA' }
    }
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve ?? ''
      const scheme = EC_SCHEMES[curve]
      if (!scheme) throw new Error(`unsupported EC curve ${curve} (P-256, P-384 or P-521)`)
      return { schemes: [scheme], authentication: 'ECDSA' }
    }
    case 'ed25519':
      return { schemes: [ED25519_SCHEME], authentication: 'ECDSA' }
    default:
      throw new Error(`unsupported private key type ${key.asymmetricKeyType} (RSA, EC or Ed25519)`)
  }
}

/** The TLS 1.2 suite authentication `key` fits; throws for a key titus cannot sign with. */
export function checkSigningKey(key: KeyObject): AuthenticationKind {
  return profileOf(key).authentication
}

/** A Signer over node:crypto for an RSA, ECDSA (P-256/P-384/P-521) or Ed25519 private key in PEM. */
export function createLocalSigner(keyPem: string): Signer {
  const key = createPrivateKey(keyPem)
  const specs = profileOf(key).schemes
  return {
    schemes: specs.map(spec => spec.code),
    async sign(scheme, message) {
      const spec = specs.find(s => s.code === scheme)
      if (!spec) throw new Error(`key cannot sign with scheme 0x${scheme.toString(16)}`)
      const options =
        spec.pssSaltLength === undefined
          ? key
          : { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.pssSaltLength }
      // ECDSA signatures come out DER-encoded, which is what TLS sends.
      return sign(spec.digest, message, options)
    },
  }
}
