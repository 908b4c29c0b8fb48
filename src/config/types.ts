// The shapes configuration takes: raw entries as read from files and argv, and the resolved result.
import type { Located } from './errors.js'

// One `name value` as written. `vhost` is the 1-based number of the vhost block it belongs to (absent:
// global); the block's own `vhost` line is an entry too, named 'vhost', so empty blocks survive.
export interface ConfigEntry {
  name: string
  value: string
  file: string
  line: number
  vhost?: number
}

export interface ListenAddress {
  host: string
  port: number
}

export interface VhostMatch {
  // Canonical IP text (IPv4 dotted quad, IPv6 compressed lowercase).
  localAddress?: string
  localPort?: number
  // Any of these names, compared case-insensitively; null matches a client that sent no SNI.
  sniNames?: (string | null)[]
}

// Finite-field DH parameters for TLS 1.2 DHE when the client offers no RFC 7919 group.
export type DhParams =
  | { kind: 'ffdhe'; bits: 2048 | 3072 | 4096 } // RFC 7919
  | { kind: 'rfc3526'; bits: 2048 | 3072 | 4096 } // RFC 3526 groups 14, 15, 16 (titus 0.4's dhgroup)
  | { kind: 'pem'; file: string; p: Uint8Array; g: Uint8Array } // big-endian, no leading zeros

export interface Vhost {
  // 1.. for vhost blocks in configuration order; 0 for the implicit vhost used when there are none.
  id: number
  // 'file:line' of the `vhost` line, or 'implicit'.
  source: string
  // Where each option in effect for this vhost was set, by name (absent: its default), for problems found after
  // resolution, such as a key that does not match its certificate.
  locations: Record<string, Located>
  match: VhostMatch
  key: string // absolute paths
  cert: string
  // Empty / 0 only with `transparent yes`, where the backend is the client's original destination.
  backend: string
  backendPort: number
  tls12: boolean
  tls13: boolean
  // TLS 1.2 clients without the extended master secret (RFC 7627) are refused.
  extendedMasterSecret: boolean
  cipherSuites12: number[] // IANA code points, preference order
  cipherSuites13: number[]
  // IANA NamedGroup code points, preference order: the ecdhcurve list, then the ffdhe groups of dhgroup.
  groups: number[]
  dhParams: DhParams
  honorClientCipherOrder: boolean
  alpn?: string[]
}

export interface TitusConfig {
  // Empty when neither port nor listen was given; the caller decides whether that is an error.
  listen: ListenAddress[]
  daemon: boolean
  pidFile?: string
  transparent: 'yes' | 'no' | 'backend-only'
  minSpareChildren: number
  maxChildren: number
  maxHandshakeTime: number // seconds
  shutdownTimeout: number // seconds active connections get after SIGTERM/SIGINT
  networkUser?: string
  networkGroup?: string
  keyserverUser?: string
  keyserverGroup?: string
  chroot?: string
  isolation: 'strict' | 'pooled' | 'none'
  logFormat: 'text' | 'json'
  vhosts: Vhost[]
  // Where each global option was set, by name (absent: its default), as Vhost.locations.
  locations: Record<string, Located>
}
