// Which vhost serves a connection: the first whose local address, local port and server name all match
// (an unset criterion matches anything; a null server name means "the client sent no SNI").
export interface VhostMatch {
  localAddress?: string
  localPort?: number
  sniNames?: (string | null)[]
}

export interface ConnectionFacts {
  localAddress: string
  localPort: number
  serverName?: string
}

// A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a
}

export function matchVhost<V extends { match: VhostMatch }>(vhosts: readonly V[], c: ConnectionFacts): V | undefined {
  const local = plainAddress(c.localAddress)
  const sni = c.serverName?.toLowerCase()
  return vhosts.find(({ match: m }) => {
    if (m.localAddress !== undefined && plainAddress(m.localAddress) !== local) return false
    if (m.localPort !== undefined && m.localPort !== c.localPort) return false
    if (m.sniNames !== undefined && !m.sniNames.some(n => (n === null ? sni === undefined : n.toLowerCase() === sni))) return false
    return true
  })
}
