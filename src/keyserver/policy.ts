// What the keyserver agrees to sign. A compromised connection process must not turn the keyserver into a
// general signing oracle: only well-formed handshake payloads, a few per connection.

// TLS 1.3 CertificateVerify input (RFC 8446 §4.4.3): 64 spaces, the context string, a zero byte, a transcript hash.
const TLS13_PREFIX = new Uint8Array([...new Array(64).fill(0x20), ...new TextEncoder().encode('TLS 1.3, server CertificateVerify'), 0])
const TRANSCRIPT_HASH_LENGTHS = new Set([32, 48]) // SHA-256 and SHA-384 suites

// Signatures one connection may ask for: one CertificateVerify (TLS 1.3) or one ServerKeyExchange (TLS 1.2).
export const SIGNATURES_PER_CONNECTION = 1

export function checkSignPayload(message: Uint8Array): string | undefined {
  if (message.length === TLS13_PREFIX.length + 32 || message.length === TLS13_PREFIX.length + 48) {
    for (let i = 0; i < TLS13_PREFIX.length; i++) if (message[i] !== TLS13_PREFIX[i]) return 'not a TLS 1.3 server CertificateVerify payload'
    if (!TRANSCRIPT_HASH_LENGTHS.has(message.length - TLS13_PREFIX.length)) return 'bad transcript hash length'
    return undefined
  }
  return `payload of ${message.length} bytes is not a TLS handshake signature input`
}
