// TLS 1.2 handshake message codecs (RFC 5246 §7.4, RFC 8422 §5.4 and §5.7, RFC 7627, RFC 5746): the server's
// first flight and the client's ClientKeyExchange. Finished and ClientHello are shared with TLS 1.3 (messages.ts).
import { TlsAlert } from './alerts.js'
import { Reader, Writer } from './codec.js'
import { ExtensionType, HandshakeType, ProtocolVersion, type KeyExchangeKind } from './constants.js'
import { writeExtensions } from './extensions.js'
import { alpnExtension, handshakeMessage } from './messages.js'

/** ECCurveType named_curve (RFC 8422 §5.4): the only curve type we send. */
export const EC_CURVE_TYPE_NAMED = 3
/** ECPointFormat uncompressed (RFC 8422 §5.1.2): the only point format (RFC 8422 deprecates the others). */
export const EC_POINT_FORMAT_UNCOMPRESSED = 0

export interface ServerHello12Fields {
  random: Uint8Array
  cipherSuite: number
  /** Client signalled RFC 5746 support (extension or SCSV): answer with an empty renegotiation_info. */
  renegotiationInfo: boolean
  extendedMasterSecret: boolean
  /** An ECDHE suite was chosen and the client sent ec_point_formats. */
  ecPointFormats: boolean
  serverNameAcknowledged: boolean
  alpn?: string
  recordSizeLimit?: number
}

/** ServerHello for TLS 1.2. The session_id is empty: we do not resume sessions (RFC 5246 §7.4.1.3). */
export function serverHello12(fields: ServerHello12Fields): Buffer {
  return handshakeMessage(HandshakeType.serverHello, w => {
    w.u16(ProtocolVersion.tls12).bytes(fields.random)
    w.vector(1, () => {})
    w.u16(fields.cipherSuite).u8(0)
    const extensions: Array<[number, (w: Writer) => void]> = []
    if (fields.renegotiationInfo) extensions.push([ExtensionType.renegotiationInfo, e => e.vector(1, () => {})])
    if (fields.extendedMasterSecret) extensions.push([ExtensionType.extendedMasterSecret, () => {}])
    if (fields.ecPointFormats) extensions.push([ExtensionType.ecPointFormats, e => e.vector(1, v => v.u8(EC_POINT_FORMAT_UNCOMPRESSED))])
    if (fields.serverNameAcknowledged) extensions.push([ExtensionType.serverName, () => {}])
    if (fields.alpn !== undefined) extensions.push(alpnExtension(fields.alpn))
    const limit = fields.recordSizeLimit
    if (limit !== undefined) extensions.push([ExtensionType.recordSizeLimit, e => e.u16(limit)])
    writeExtensions(w, extensions)
  })
}

/** Certificate (RFC 5246 §7.4.2): the chain without the TLS 1.3 context and per-entry extensions. */
export function certificate12(chain: readonly Uint8Array[]): Buffer {
  return handshakeMessage(HandshakeType.certificate, w => {
    w.vector(3, list => {
      for (const cert of chain) list.vector(3, v => v.bytes(cert))
    })
  })
}

export type KeyExchangeParams =
  | { kind: 'ECDHE'; group: number; publicKey: Uint8Array }
  | { kind: 'DHE'; p: Uint8Array; g: Uint8Array; publicKey: Uint8Array }

/** ServerECDHParams (RFC 8422 §5.4) or ServerDHParams (RFC 5246 §7.4.3): what the signature covers after the randoms. */
export function encodeKeyExchangeParams(params: KeyExchangeParams): Buffer {
  const w = new Writer(params.kind === 'DHE' ? 2 * params.p.length + 16 : 128)
  if (params.kind === 'ECDHE') {
    w.u8(EC_CURVE_TYPE_NAMED).u16(params.group).vector(1, v => v.bytes(params.publicKey))
  } else {
    w.vector(2, v => v.bytes(params.p)).vector(2, v => v.bytes(params.g)).vector(2, v => v.bytes(params.publicKey))
  }
  return w.finish()
}

/** ServerKeyExchange: the encoded params, then a DigitallySigned (RFC 5246 §4.7 with TLS 1.3 scheme code points). */
export function serverKeyExchange(encodedParams: Uint8Array, scheme: number, signature: Uint8Array): Buffer {
  return handshakeMessage(HandshakeType.serverKeyExchange, w => w.bytes(encodedParams).u16(scheme).vector(2, v => v.bytes(signature)))
}

export function serverHelloDone(): Buffer {
  return handshakeMessage(HandshakeType.serverHelloDone, () => {})
}

/**
 * The client's public value from ClientKeyExchange: ClientECDiffieHellmanPublic (RFC 8422 §5.7, an 8-bit length)
 * or ClientDiffieHellmanPublic (RFC 5246 §7.4.7.2, a 16-bit length). Malformed framing is decode_error.
 */
export function parseClientKeyExchange(body: Uint8Array, kind: KeyExchangeKind): Uint8Array {
  const r = new Reader(body)
  const publicValue = kind === 'ECDHE' ? r.vector(1, 1) : r.vector(2, 1)
  r.end()
  return publicValue
}

/** Finished in TLS 1.2 is exactly 12 bytes of verify_data (RFC 5246 §7.4.9); anything else does not decode. */
export function parseFinished12(body: Uint8Array): Uint8Array {
  if (body.length !== 12) throw new TlsAlert('decode_error', `Finished of ${body.length} bytes`)
  return body
}
