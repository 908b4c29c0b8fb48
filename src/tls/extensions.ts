// ClientHello extension parsing and server extension encoding (RFC 8446 §4.2, RFC 6066 §3, RFC 7301,
// RFC 8449; for TLS 1.2 also RFC 8422 §5.1.2, RFC 7627, RFC 5746). Parsing is strict: malformed bodies are decode_error, semantic violations illegal_parameter.
import { TlsAlert } from './alerts.js'
import { Reader, Writer } from './codec.js'
import { ExtensionType } from './constants.js'

export interface RawExtension {
  readonly type: number
  readonly data: Uint8Array
}

export interface KeyShareEntry {
  readonly group: number
  readonly keyExchange: Uint8Array
}

/** What the server understands from a ClientHello's extensions; undefined = extension absent. */
export interface ClientExtensions {
  serverName?: string
  alpn?: string[]
  supportedVersions?: number[]
  supportedGroups?: number[]
  keyShares?: KeyShareEntry[]
  signatureAlgorithms?: number[]
  signatureAlgorithmsCert?: number[]
  pskKeyExchangeModes?: number[]
  preSharedKey: boolean
  earlyData: boolean
  cookie?: Uint8Array
  recordSizeLimit?: number
  /** ECPointFormat values (RFC 8422 §5.1.2). */
  ecPointFormats?: number[]
  extendedMasterSecret: boolean
  /** renegotiated_connection (RFC 5746 §3.2): empty in an initial handshake. */
  renegotiationInfo?: Uint8Array
}

/** Parses the extensions block; rejects duplicates and a pre_shared_key that is not last. */
export function parseExtensionBlock(reader: Reader): RawExtension[] {
  const block = reader.sub(2)
  const seen = new Set<number>()
  const out: RawExtension[] = []
  while (block.remaining > 0) {
    const type = block.u16()
    const data = block.vector(2)
    if (seen.has(type)) throw new TlsAlert('illegal_parameter', `duplicate extension ${type}`)
    seen.add(type)
    out.push({ type, data })
  }
  const pskIndex = out.findIndex(e => e.type === ExtensionType.preSharedKey)
  if (pskIndex !== -1 && pskIndex !== out.length - 1) {
    throw new TlsAlert('illegal_parameter', 'pre_shared_key is not the last extension')
  }
  return out
}

function parseServerName(r: Reader): string | undefined {
  const list = r.sub(2, 1)
  let hostName: string | undefined
  while (list.remaining > 0) {
    const nameType = list.u8()
    const name = list.vector(2, 1)
    if (nameType !== 0) continue // only host_name is defined; skip others
    if (hostName !== undefined) throw new TlsAlert('illegal_parameter', 'more than one host_name in server_name')
    // A DNS name has at most 255 bytes: a longer one can name no vhost (and no IPC message carries it).
    if (name.length > 255) throw new TlsAlert('unrecognized_name', `server_name of ${name.length} bytes`)
    // RFC 6066 §3: ASCII host name without a trailing dot.
    for (const byte of name) {
      if (byte <= 0x20 || byte >= 0x7f) throw new TlsAlert('decode_error', 'server_name is not an ASCII host name')
    }
    hostName = Buffer.from(name).toString('latin1').toLowerCase()
    if (hostName.endsWith('.')) throw new TlsAlert('decode_error', 'server_name ends with a dot')
  }
  return hostName
}

function parseAlpn(r: Reader): string[] {
  const list = r.sub(2, 1)
  const out: string[] = []
  while (list.remaining > 0) out.push(Buffer.from(list.vector(1, 1)).toString('latin1'))
  return out
}

function parseKeyShares(r: Reader): KeyShareEntry[] {
  const list = r.sub(2)
  const out: KeyShareEntry[] = []
  while (list.remaining > 0) {
    const group = list.u16()
    const keyExchange = list.vector(2, 1)
    if (out.some(e => e.group === group)) throw new TlsAlert('illegal_parameter', 'duplicate key_share group')
    out.push({ group, keyExchange })
  }
  return out
}

export function parseClientExtensions(raw: readonly RawExtension[]): ClientExtensions {
  const ext: ClientExtensions = { preSharedKey: false, earlyData: false, extendedMasterSecret: false }
  for (const { type, data } of raw) {
    const r = new Reader(data)
    switch (type) {
      case ExtensionType.serverName:
        ext.serverName = parseServerName(r)
        break
      case ExtensionType.alpn:
        ext.alpn = parseAlpn(r)
        break
      case ExtensionType.supportedVersions:
        ext.supportedVersions = r.u16List(1, 2)
        break
      case ExtensionType.supportedGroups:
        ext.supportedGroups = r.u16List(2, 2)
        break
      case ExtensionType.keyShare:
        ext.keyShares = parseKeyShares(r)
        break
      case ExtensionType.signatureAlgorithms:
        ext.signatureAlgorithms = r.u16List(2, 2)
        break
      case ExtensionType.signatureAlgorithmsCert:
        ext.signatureAlgorithmsCert = r.u16List(2, 2)
        break
      case ExtensionType.pskKeyExchangeModes:
        ext.pskKeyExchangeModes = Array.from(r.vector(1, 1))
        break
      case ExtensionType.preSharedKey:
        // No resumption yet: the offer is ignored (RFC 8446 §4.2.11 lets the server decline), but it must parse.
        r.sub(2, 7)
        r.sub(2, 33)
        ext.preSharedKey = true
        break
      case ExtensionType.earlyData:
        ext.earlyData = true
        break
      case ExtensionType.cookie:
        ext.cookie = r.vector(2, 1)
        break
      case ExtensionType.recordSizeLimit: {
        const limit = r.u16()
        if (limit < 64) throw new TlsAlert('illegal_parameter', 'record_size_limit below 64')
        ext.recordSizeLimit = limit
        break
      }
      case ExtensionType.padding:
        r.bytes(r.remaining)
        break
      case ExtensionType.ecPointFormats:
        ext.ecPointFormats = Array.from(r.vector(1, 1))
        break
      case ExtensionType.extendedMasterSecret:
        ext.extendedMasterSecret = true // empty body: r.end() below checks it
        break
      case ExtensionType.renegotiationInfo:
        ext.renegotiationInfo = r.vector(1)
        break
      default:
        continue // unknown extensions are ignored (RFC 8446 §4.2)
    }
    r.end()
  }
  return ext
}

/** Encodes an extensions block from (type, body writer) pairs. */
export function writeExtensions(w: Writer, extensions: ReadonlyArray<readonly [number, (w: Writer) => void]>): void {
  w.vector(2, block => {
    for (const [type, body] of extensions) block.u16(type).vector(2, body)
  })
}
