// Messages on the IPC channels between the supervisor, connection processes and the keyserver.
// Every message from a connection process is untrusted (it parses attacker bytes): the receiver
// validates it with the parse functions below and drops the child on anything unexpected. The keyserver
// is sandboxed too, so its replies are validated the same way.
import type { SignableVersions } from '../keyserver/policy.js'

// Public view of a vhost as a connection process needs it: no key, no backend address.
export interface VhostView {
  id: number
  match: { localAddress?: string; localPort?: number; sniNames?: (string | null)[] }
  chain: string[] // base64 DER, leaf first
  schemes: number[] // signature schemes the keyserver can produce with this vhost's key
  cipherSuites13: number[]
  cipherSuites12: number[]
  groups: number[]
  honorClientCipherOrder: boolean
  alpn?: string[]
  tls12: boolean
  tls13: boolean
  dhParams: { p: string; g: string } // base64, big-endian: TLS 1.2 DHE parameters for clients without RFC 7919 groups
  requireExtendedMasterSecret: boolean
}

// supervisor → connection process. `conn` names the connection (a pooled process serves many).
export type ToConn =
  | { t: 'setup'; vhosts: VhostView[]; maxHandshakeMs: number; pooled: boolean }
  | { t: 'client'; conn: number; localAddress: string; localPort: number; remoteAddress: string; remotePort: number } // + client socket
  | { t: 'backend'; conn: number; ok: true } // + backend socket
  | { t: 'backend'; conn: number; ok: false; reason: string }
  | { t: 'signed'; conn: number; id: number; signature: string }
  | { t: 'sign-failed'; conn: number; id: number }

// connection process → supervisor
export type FromConn =
  | { t: 'ready' }
  | { t: 'vhost'; conn: number; vhost: number; serverName?: string }
  | { t: 'sign'; conn: number; id: number; scheme: number; message: string }
  | { t: 'handshake'; conn: number; version: string; suite: string; group: string; alpn?: string }
  | { t: 'backend'; conn: number }
  | { t: 'done'; conn: number; outcome: string; bytesIn: number; bytesOut: number }

// supervisor → keyserver. Each reload is a generation with keys of its own: a connection is signed for with the
// keys of its generation, which the keyserver keeps until the supervisor retires it (no connection of it is left).
export type ToKeyserver =
  | { t: 'keys'; generation: number; keys: { vhost: number; pem: string; versions: SignableVersions }[] }
  | { t: 'retire'; generation: number }
  | { t: 'sign'; id: number; conn: number; generation: number; vhost: number; scheme: number; message: string }
  | { t: 'forget'; conn: number }

// keyserver → supervisor
export type FromKeyserver =
  | { t: 'ready'; generation: number; schemes: { vhost: number; schemes: number[] }[] }
  | { t: 'signed'; id: number; signature: string }
  | { t: 'refused'; id: number; reason: string }

// A signed payload is at most a TLS 1.2 ServerDHParams with an 8192-bit prime: 64 + 3 * 2 + 2 * 1024 + 4 bytes.
// A signature (RSA-8192 at most, 1024 bytes) fits too.
const MAX_BASE64 = 4096
// Vhost ids are their block numbers; a key yields a handful of signature schemes.
const MAX_VHOST_ID = 1 << 16
const MAX_SCHEMES = 32

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
function isUint(v: unknown, max = 0x7fffffff): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max
}
function isShortString(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length <= max
}
function isBase64(v: unknown): v is string {
  return isShortString(v, MAX_BASE64) && /^[A-Za-z0-9+/]*={0,2}$/.test(v)
}

// Validates a message from an untrusted connection process; undefined means "protocol violation".
export function parseFromConn(v: unknown): FromConn | undefined {
  if (!isObject(v)) return undefined
  if (v.t === 'ready') return { t: 'ready' }
  const conn = v.conn
  if (!isUint(conn)) return undefined
  switch (v.t) {
    case 'backend':
      return { t: 'backend', conn }
    case 'vhost':
      if (!isUint(v.vhost, MAX_VHOST_ID)) return undefined
      if (v.serverName !== undefined && !isShortString(v.serverName, 255)) return undefined
      return { t: 'vhost', conn, vhost: v.vhost, serverName: v.serverName as string | undefined }
    case 'sign':
      if (!isUint(v.id) || !isUint(v.scheme, 0xffff) || !isBase64(v.message)) return undefined
      return { t: 'sign', conn, id: v.id, scheme: v.scheme, message: v.message }
    case 'handshake':
      if (!isShortString(v.version, 16) || !isShortString(v.suite, 64) || !isShortString(v.group, 32)) return undefined
      if (v.alpn !== undefined && !isShortString(v.alpn, 255)) return undefined
      return { t: 'handshake', conn, version: v.version, suite: v.suite, group: v.group, alpn: v.alpn as string | undefined }
    case 'done':
      if (!isShortString(v.outcome, 200) || !isUint(v.bytesIn, Number.MAX_SAFE_INTEGER) || !isUint(v.bytesOut, Number.MAX_SAFE_INTEGER)) return undefined
      return { t: 'done', conn, outcome: v.outcome, bytesIn: v.bytesIn, bytesOut: v.bytesOut }
  }
  return undefined
}

// Validates a reply from the keyserver; undefined means "protocol violation".
export function parseFromKeyserver(v: unknown): FromKeyserver | undefined {
  if (!isObject(v) || !isUint(v.t === 'ready' ? v.generation : v.id)) return undefined
  switch (v.t) {
    case 'ready': {
      if (!Array.isArray(v.schemes) || v.schemes.length > MAX_VHOST_ID) return undefined
      const schemes: { vhost: number; schemes: number[] }[] = []
      for (const s of v.schemes as unknown[]) {
        if (!isObject(s) || !isUint(s.vhost, MAX_VHOST_ID) || !Array.isArray(s.schemes) || s.schemes.length > MAX_SCHEMES) return undefined
        if (!s.schemes.every(code => isUint(code, 0xffff))) return undefined
        schemes.push({ vhost: s.vhost, schemes: s.schemes as number[] })
      }
      return { t: 'ready', generation: v.generation as number, schemes }
    }
    case 'signed':
      if (!isBase64(v.signature) || v.signature === '') return undefined
      return { t: 'signed', id: v.id as number, signature: v.signature }
    case 'refused':
      if (!isShortString(v.reason, 500)) return undefined
      return { t: 'refused', id: v.id as number, reason: v.reason }
  }
  return undefined
}
