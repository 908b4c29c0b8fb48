// TLS 1.3 record protection for TLS_AES_128_GCM_SHA256 (RFC 8446 5.2, 5.3, 7.1, 7.3), so a test in the middle can
// open a client's record, change the handshake message inside, and seal it again with the keys the client logged.
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto'
import { CONTENT_TYPE, record, u16, u8, vec8 } from './wire.js'

function hkdfExpandLabel(secret: Buffer, label: string, length: number): Buffer {
  const info = Buffer.concat([u16(length), vec8(Buffer.from(`tls13 ${label}`)), vec8()])
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
