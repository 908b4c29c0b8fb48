// The effective configuration in titus.conf syntax, after defaults and inheritance: what
// `titus --check-config` prints. Parsing it back gives the same configuration.
import { formatListenAddress } from './address.js'
import { cipherSuiteName } from './ciphers.js'
import { ffdheCode, groupName, isFfdheGroup } from './groups.js'
import type { DhParams, TitusConfig, Vhost } from './types.js'

const yesNo = (b: boolean) => (b ? 'yes' : 'no')

function dhGroupText(params: DhParams, groups: number[]): string {
  const ffdhe = groups.filter(isFfdheGroup).map(groupName)
  switch (params.kind) {
    case 'pem':
      return params.file
    case 'rfc3526':
      return [{ 2048: '14', 3072: '15', 4096: '16' }[params.bits], ...ffdhe].join(':')
    case 'ffdhe':
      // The first ffdhe group is the TLS 1.2 parameters; it is first among `groups` too.
      return ffdhe.length > 0 ? ffdhe.join(':') : groupName(ffdheCode(params.bits))
  }
}

function vhostLines(v: Vhost): [string, string][] {
  const lines: [string, string][] = []
  if (v.match.localAddress !== undefined) lines.push(['local-address', v.match.localAddress])
  if (v.match.localPort !== undefined) lines.push(['local-port', String(v.match.localPort)])
  for (const name of v.match.sniNames ?? []) lines.push(['sni-name', name ?? '""'])
  lines.push(['key', v.key], ['cert', v.cert])
  if (v.backend !== '') lines.push(['backend', v.backend], ['backend-port', String(v.backendPort)])
  lines.push(
    ['tlsv1.2', yesNo(v.tls12)],
    ['tlsv1.3', yesNo(v.tls13)],
    ['extended-master-secret', yesNo(v.extendedMasterSecret)],
    ['ciphers', v.cipherSuites12.map(cipherSuiteName).join(':')],
    ['ciphersuites', v.cipherSuites13.map(cipherSuiteName).join(':')],
    ['honor-client-cipher-order', yesNo(v.honorClientCipherOrder)],
    ['ecdhcurve', v.groups.filter(g => !isFfdheGroup(g)).map(groupName).join(':')],
    ['dhgroup', dhGroupText(v.dhParams, v.groups)],
  )
  if (v.alpn) lines.push(['alpn', v.alpn.join(',')])
  return lines
}

const format = (lines: [string, string][], indent: string) => lines.map(([k, v]) => `${indent}${k.padEnd(26)}${v}\n`).join('')

export function describeConfig(cfg: TitusConfig): string {
  const globals: [string, string][] = [
    ...cfg.listen.map((l): [string, string] => ['listen', formatListenAddress(l)]),
    ['daemon', yesNo(cfg.daemon)],
    ...(cfg.pidFile !== undefined ? [['pid-file', cfg.pidFile] as [string, string]] : []),
    ['transparent', cfg.transparent],
    ['min-spare-children', String(cfg.minSpareChildren)],
    ['max-children', String(cfg.maxChildren)],
    ['max-handshake-time', String(cfg.maxHandshakeTime)],
    ['shutdown-timeout', String(cfg.shutdownTimeout)],
  ]
  const optional: [string, string | undefined][] = [
    ['network-user', cfg.networkUser],
    ['network-group', cfg.networkGroup],
    ['keyserver-user', cfg.keyserverUser],
    ['keyserver-group', cfg.keyserverGroup],
    ['chroot', cfg.chroot],
  ]
  for (const [k, v] of optional) if (v !== undefined) globals.push([k, v])
  globals.push(['isolation', cfg.isolation], ['log-format', cfg.logFormat])

  let out = '# titus effective configuration (defaults and inherited values filled in)\n' + format(globals, '')
  for (const v of cfg.vhosts) {
    if (v.id === 0) {
      out += '\n# No vhost blocks: one implicit vhost serves every connection.\n' + format(vhostLines(v), '')
    } else {
      out += `\n# vhost ${v.id}, from ${v.source}\nvhost\n` + format(vhostLines(v), '\t')
    }
  }
  return out
}
