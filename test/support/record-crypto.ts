// TLS 1.3 record protection for TLS_AES_128_GCM_SHA256 (RFC 8446 5.2, 5.3, 7.1, 7.3), so a test in the middle can
// open a client's record, change the handshake message inside, and seal it again with the keys the client logged.
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto'
import { CONTENT_TYPE, record, u16, u8, vec8 } from './wire.js'

export function hkdfExpandLabel(secret: Buffer, label: string, length: number, context: Buffer = Buffer.alloc(0)): Buffer {
  const info = Buffer.concat([u16(length), vec8(Buffer.from(`tls13 ${label}`)), vec8(context)])
  // HKDF-Expand; one SHA-256 block is enough for the key (16) and the IV (12).
  return createHmac('sha256', secret).update(Buffer.concat([info, u8(1)])).digest().subarray(0, length)
}

export interface RecordKeys {
  key: Buffer
  iv: Buffer
}

export function trafficKeys(secret: Buffer): RecordKeys {
  return { key: hkdfExpandLabel(secret, 'key', 16), iv: hkdfExpandLabel(secret, 'iv', 12) }
}

function nonce(iv: Buffer, sequence: number): Buffer {
  const n = Buffer.from(iv)
  n.writeUInt32BE((n.readUInt32BE(8) ^ sequence) >>> 0, 8)
  return n
}

// Opens one application_data record body; returns the inner content (padding removed) and its real type.
export function openRecord(keys: RecordKeys, sequence: number, body: Buffer): { type: number; content: Buffer } {
  const header = record(CONTENT_TYPE.applicationData, Buffer.alloc(0)).subarray(0, 3)
  const aad = Buffer.concat([header, u16(body.length)])
  const decipher = createDecipheriv('aes-128-gcm', keys.key, nonce(keys.iv, sequence))
  decipher.setAAD(aad)
  decipher.setAuthTag(body.subarray(body.length - 16))
  const inner = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()])
  let end = inner.length - 1
  while (end > 0 && inner[end] === 0) end--
  return { type: inner[end]!, content: inner.subarray(0, end) }
}

// Seals content of the given real type into a whole application_data record.
export function sealRecord(keys: RecordKeys, sequence: number, type: number, content: Buffer): Buffer {
  const inner = Buffer.concat([content, u8(type)])
  const aad = Buffer.concat([record(CONTENT_TYPE.applicationData, Buffer.alloc(0)).subarray(0, 3), u16(inner.length + 16)])
  const cipher = createCipheriv('aes-128-gcm', keys.key, nonce(keys.iv, sequence))
  cipher.setAAD(aad)
  const sealed = Buffer.concat([cipher.update(inner), cipher.final(), cipher.getAuthTag()])
  return record(CONTENT_TYPE.applicationData, sealed)
}

// Secrets by label from NSS key log lines (`LABEL <client_random> <secret>`), as node:tls 'keylog' emits them.
export function parseKeyLog(lines: string): Map<string, Buffer> {
  const secrets = new Map<string, Buffer>()
  for (const line of lines.split('\n')) {
    const [label, , secret] = line.trim().split(' ')
    if (label && secret) secrets.set(label, Buffer.from(secret, 'hex'))
  }
  return secrets
}

// TLS 1.2 (RFC 5246 5, 6.2.3.3, 6.3, 7.4.9; RFC 7627 4; RFC 5288 3) for SHA-256 AES-128-GCM suites, written from
// the RFCs rather than from titus, so that a hand-made TLS 1.2 client can check titus' side of the key exchange.
export function prf12(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  const labelAndSeed = Buffer.concat([Buffer.from(label), seed])
  const blocks: Buffer[] = []
  // P_SHA256: A(0) = seed, A(i) = HMAC(secret, A(i-1)); output HMAC(secret, A(i) + seed) for i = 1, 2, ...
  for (let a = labelAndSeed, produced = 0; produced < length; produced += 32) {
    a = createHmac('sha256', secret).update(a).digest()
    blocks.push(createHmac('sha256', secret).update(Buffer.concat([a, labelAndSeed])).digest())
  }
  return Buffer.concat(blocks).subarray(0, length)
}

export interface Tls12Keys {
  masterSecret: Buffer
  client: RecordKeys
  server: RecordKeys
}

// The master secret (extended when sessionHash is given, else the legacy one) and the AES-128-GCM key block:
// client_write_key, server_write_key, then the 4-byte implicit nonces (salts) of client and server.
export function tls12Keys(preMasterSecret: Buffer, clientRandom: Buffer, serverRandom: Buffer, sessionHash?: Buffer): Tls12Keys {
  const masterSecret = sessionHash
    ? prf12(preMasterSecret, 'extended master secret', sessionHash, 48)
    : prf12(preMasterSecret, 'master secret', Buffer.concat([clientRandom, serverRandom]), 48)
  const block = prf12(masterSecret, 'key expansion', Buffer.concat([serverRandom, clientRandom]), 2 * 16 + 2 * 4)
  return {
    masterSecret,
    client: { key: block.subarray(0, 16), iv: block.subarray(32, 36) },
    server: { key: block.subarray(16, 32), iv: block.subarray(36, 40) },
  }
}

// verify_data of a Finished message: PRF(master_secret, "client finished" or "server finished", Hash(handshake_messages)).
export function finishedVerifyData12(masterSecret: Buffer, sender: 'client' | 'server', transcriptHash: Buffer): Buffer {
  return prf12(masterSecret, `${sender} finished`, transcriptHash, 12)
}

// additional_data = seq_num || type || version || length of the plaintext.
function additionalData12(sequence: number, type: number, version: number, length: number): Buffer {
  const aad = Buffer.alloc(13)
  aad.writeUInt32BE(Math.floor(sequence / 2 ** 32), 0)
  aad.writeUInt32BE(sequence >>> 0, 4)
  aad[8] = type
  aad.writeUInt16BE(version, 9)
  aad.writeUInt16BE(length, 11)
  return aad
}

// A whole AES-128-GCM record: header, explicit nonce (the sequence number, as many implementations choose), ciphertext
// and tag. `version` goes into both the header and the additional data, as a sender that uses it throughout would.
export function sealRecord12(keys: RecordKeys, sequence: number, type: number, content: Buffer, version = 0x0303): Buffer {
  const explicit = additionalData12(sequence, 0, 0, 0).subarray(0, 8)
  const cipher = createCipheriv('aes-128-gcm', keys.key, Buffer.concat([keys.iv, explicit]))
  cipher.setAAD(additionalData12(sequence, type, version, content.length))
  const sealed = Buffer.concat([explicit, cipher.update(content), cipher.final(), cipher.getAuthTag()])
  return record(type, sealed, version)
}

// Opens one AES-128-GCM record body; throws if it does not authenticate.
export function openRecord12(keys: RecordKeys, sequence: number, type: number, body: Buffer): Buffer {
  const decipher = createDecipheriv('aes-128-gcm', keys.key, Buffer.concat([keys.iv, body.subarray(0, 8)]))
  decipher.setAAD(additionalData12(sequence, type, 0x0303, body.length - 8 - 16))
  decipher.setAuthTag(body.subarray(body.length - 16))
  return Buffer.concat([decipher.update(body.subarray(8, body.length - 16)), decipher.final()])
}
