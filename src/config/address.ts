// IP address text: validation and one canonical spelling, so that vhost matching can compare strings.

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.')
  if (parts.length !== 4 || !parts.every(p => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined
  return parts.map(Number)
}

// 8 groups of 16 bits, or undefined.
function parseIpv6(text: string): number[] | undefined {
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const groups = (half: string): number[] | undefined => {
    if (half === '') return []
    const out: number[] = []
    const parts = half.split(':')
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p)
        if (!v4) return undefined
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!)
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(p)) out.push(parseInt(p, 16))
      else return undefined
    }
    return out
  }
  const head = groups(halves[0]!)
  const tail = halves.length === 2 ? groups(halves[1]!) : []
  if (!head || !tail) return undefined
  if (halves.length === 1) return head.length === 8 ? head : undefined
  if (head.length + tail.length > 7) return undefined
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
}

// RFC 5952 text: lowercase, no leading zeros, the longest run (2+) of zero groups as '::'.
function formatIpv6(g: number[]): string {
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j === i ? i + 1 : j
  }
  const hex = g.map(n => n.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

// The canonical text of an IP address, or undefined if `text` is not one. With `unmapIpv4`, an
// IPv4-mapped IPv6 address (what a dual-stack socket reports for IPv4 clients) becomes plain IPv4.
export function canonicalIp(text: string, unmapIpv4 = true): string | undefined {
  const v4 = parseIpv4(text)
  if (v4) return v4.join('.')
  const v6 = parseIpv6(text)
  if (!v6) return undefined
  const mapped = v6.slice(0, 5).every(n => n === 0) && v6[5] === 0xffff
  if (mapped && unmapIpv4) return [v6[6]! >> 8, v6[6]! & 0xff, v6[7]! >> 8, v6[7]! & 0xff].join('.')
  return formatIpv6(v6)
}

// `address:port` with IPv6 in brackets, or `*:port` for every address (dual-stack [::]).
export function parseListenAddress(text: string): { host: string; port: number } | string {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]+)$/.exec(text)
  if (!m) return 'expected address:port, with an IPv6 address in brackets ([::1]:443)'
  const port = Number(m[3])
  if (m[3]!.length > 5 || port > 65535) return `port ${m[3]} is out of range (0-65535)`
  if (m[2] === '*') return { host: '::', port }
  const host = m[1] !== undefined ? parseIpv6(m[1]) && canonicalIp(m[1], false) : parseIpv4(m[2]!) && canonicalIp(m[2]!)
  if (!host) return `${m[1] ?? m[2]} is not an IP ${m[1] !== undefined ? 'v6 ' : 'v4 '}address (host names are not accepted)`
  return { host, port }
}

export function formatListenAddress(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}
