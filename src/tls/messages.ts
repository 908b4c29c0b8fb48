// Handshake message codecs (RFC 8446 §4): ClientHello parsing, handshake framing/reassembly, and the
// server messages of a TLS 1.3 handshake.
import { TlsAlert } from './alerts.js'
import { Reader, Writer } from './codec.js'
import { ExtensionType, HandshakeType, ProtocolVersion } from './constants.js'
import { parseClientExtensions, parseExtensionBlock, writeExtensions, type ClientExtensions, type RawExtension } from './extensions.js'

/** Handshake messages larger than this are refused with decode_error (a ClientHello with post-quantum key
 * shares is a few KiB; nothing a client sends to us comes near). */
export const MAX_HANDSHAKE_MESSAGE = 64 * 1024

export interface HandshakeMessage {
  readonly type: number
  readonly body: Uint8Array
  /** Header and body, as hashed into the transcript. */
  readonly raw: Uint8Array
}

/** Reassembles handshake messages from record fragments. */
export class HandshakeReader {
  private pending: Buffer = Buffer.alloc(0)

  get hasPartialMessage(): boolean {
    return this.pending.length > 0
  }

  push(fragment: Uint8Array): void {
    this.pending = this.pending.length === 0 ? Buffer.from(fragment) : Buffer.concat([this.pending, fragment])
  }

  next(): HandshakeMessage | undefined {
    if (this.pending.length < 4) return undefined
    const length = this.pending.readUIntBE(1, 3)
    if (length > MAX_HANDSHAKE_MESSAGE) throw new TlsAlert('decode_error', `handshake message of ${length} bytes is too large`)
    if (this.pending.length < 4 + length) return undefined
    const raw = this.pending.subarray(0, 4 + length)
    this.pending = this.pending.subarray(4 + length)
    return { type: raw[0], body: raw.subarray(4), raw }
  }
}

export function handshakeMessage(type: number, body: (w: Writer) => void): Buffer {
  const w = new Writer()
  w.u8(type).vector(3, body)
  return w.finish()
}

export interface ClientHello {
  readonly legacyVersion: number
  readonly random: Uint8Array
  readonly sessionId: Uint8Array
  readonly cipherSuites: number[]
  readonly compressionMethods: Uint8Array
  readonly rawExtensions: RawExtension[]
  readonly extensions: ClientExtensions
}

export function parseClientHello(body: Uint8Array): ClientHello {
  const r = new Reader(body)
  const legacyVersion = r.u16()
  const random = r.bytes(32)
  const sessionId = r.vector(1)
  if (sessionId.length > 32) throw new TlsAlert('illegal_parameter', 'legacy_session_id longer than 32 bytes')
  const cipherSuites = r.u16List(2, 2)
  const compressionMethods = r.vector(1, 1)
  // Extensions are optional only in pre-1.2 ClientHellos.
  const rawExtensions = r.remaining > 0 ? parseExtensionBlock(r) : []
  r.end()
  return {
    legacyVersion,
    random,
    sessionId,
    cipherSuites,
    compressionMethods,
    rawExtensions,
    extensions: parseClientExtensions(rawExtensions),
  }
}

/** SHA-256("HelloRetryRequest"), the ServerHello.random that marks a HelloRetryRequest (RFC 8446 §4.1.3). */
export const HELLO_RETRY_REQUEST_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex')

export interface ServerHelloFields {
  random: Uint8Array
  sessionId: Uint8Array
  cipherSuite: number
  keyShare?: { group: number; keyExchange?: Uint8Array } // keyExchange absent in a HelloRetryRequest
  cookie?: Uint8Array
}

/** ServerHello or HelloRetryRequest (same structure) for TLS 1.3. */
export function serverHello13(fields: ServerHelloFields): Buffer {
  return handshakeMessage(HandshakeType.serverHello, w => {
    w.u16(ProtocolVersion.tls12).bytes(fields.random)
    w.vector(1, v => v.bytes(fields.sessionId))
    w.u16(fields.cipherSuite).u8(0)
    const extensions: Array<[number, (w: Writer) => void]> = [[ExtensionType.supportedVersions, e => e.u16(ProtocolVersion.tls13)]]
    const keyShare = fields.keyShare
    if (keyShare) {
      extensions.push([
        ExtensionType.keyShare,
        e => {
          e.u16(keyShare.group)
          if (keyShare.keyExchange) e.vector(2, v => v.bytes(keyShare.keyExchange!))
        },
      ])
    }
    const cookie = fields.cookie
    if (cookie) extensions.push([ExtensionType.cookie, e => e.vector(2, v => v.bytes(cookie))])
    writeExtensions(w, extensions)
  })
}

export interface EncryptedExtensionsFields {
  serverNameAcknowledged: boolean
  alpn?: string
  /** Only when the client offered record_size_limit (RFC 8446 §4.2: never an extension the client did not send). */
  recordSizeLimit?: number
}

export function encryptedExtensions(fields: EncryptedExtensionsFields): Buffer {
  return handshakeMessage(HandshakeType.encryptedExtensions, w => {
    const extensions: Array<[number, (w: Writer) => void]> = []
    if (fields.serverNameAcknowledged) extensions.push([ExtensionType.serverName, () => {}])
    if (fields.alpn !== undefined) extensions.push(alpnExtension(fields.alpn))
    const recordSizeLimit = fields.recordSizeLimit
    if (recordSizeLimit !== undefined) extensions.push([ExtensionType.recordSizeLimit, e => e.u16(recordSizeLimit)])
    writeExtensions(w, extensions)
  })
}

/** The server's ALPN extension: a ProtocolNameList of exactly the selected protocol (RFC 7301 §3.1). */
export function alpnExtension(protocol: string): [number, (w: Writer) => void] {
  return [ExtensionType.alpn, e => e.vector(2, list => list.vector(1, v => v.bytes(Buffer.from(protocol, 'latin1'))))]
}

export function certificate13(chain: readonly Uint8Array[]): Buffer {
  return handshakeMessage(HandshakeType.certificate, w => {
    w.u8(0) // empty certificate_request_context
    w.vector(3, list => {
      for (const cert of chain) list.vector(3, v => v.bytes(cert)).u16(0)
    })
  })
}

export function certificateVerify(scheme: number, signature: Uint8Array): Buffer {
  return handshakeMessage(HandshakeType.certificateVerify, w => w.u16(scheme).vector(2, v => v.bytes(signature)))
}

export function finished(verifyData: Uint8Array): Buffer {
  return handshakeMessage(HandshakeType.finished, w => w.bytes(verifyData))
}

export function keyUpdate(updateRequested: boolean): Buffer {
  return handshakeMessage(HandshakeType.keyUpdate, w => w.u8(updateRequested ? 1 : 0))
}

/** Parses a KeyUpdate body; returns whether the peer requested an update. */
export function parseKeyUpdate(body: Uint8Array): boolean {
  const r = new Reader(body)
  const request = r.u8()
  r.end()
  if (request > 1) throw new TlsAlert('illegal_parameter', 'invalid KeyUpdateRequest')
  return request === 1
}
