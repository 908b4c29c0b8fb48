// Which vhost serves a connection: the first whose every condition holds (titus 0.4's rule).
import { canonicalIp } from './address.js'
import type { TitusConfig, Vhost, VhostMatch } from './types.js'

export interface ConnectionFacts {
  localAddress: string // as the socket reports it; IPv4-mapped IPv6 is fine
  localPort: number
  serverName?: string // absent or '' when the client sent no SNI
}

const asciiLower = (s: string) => s.replace(/[A-Z]/g, c => String.fromCharCode(c.charCodeAt(0) + 32))

export function vhostMatches(match: VhostMatch, conn: ConnectionFacts): boolean {
  if (match.localAddress !== undefined && match.localAddress !== (canonicalIp(conn.localAddress) ?? conn.localAddress)) return false
  if (match.localPort !== undefined && match.localPort !== conn.localPort) return false
  if (match.sniNames !== undefined) {
    const sent = conn.serverName ? asciiLower(conn.serverName) : null
    if (!match.sniNames.some(n => (n === null ? sent === null : sent !== null && asciiLower(n) === sent))) return false
  }
  return true
}

// Generic so that the connection process can match the vhost views it was sent.
export function matchVhost<T extends { match: VhostMatch }>(vhosts: readonly T[], conn: ConnectionFacts): T | undefined {
  return vhosts.find(v => vhostMatches(v.match, conn))
}

// undefined: no vhost matches, and the connection is to be dropped.
export function selectVhost(cfg: TitusConfig, conn: ConnectionFacts): Vhost | undefined {
  return matchVhost(cfg.vhosts, conn)
}
