// titus.conf and TOML files on disk: loading, includes, directories, inheritance, precedence, round trip.
import t from 'tap'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  COMMAND_LINE,
  ConfigError,
  describeConfig,
  loadConfig,
  parseTitusConf,
  parseTomlConfig,
  resolveConfig,
  type ConfigEntry,
  type TitusConfig,
} from '../src/config/index.js'

const FIXTURES = fileURLToPath(new URL('./fixtures/config/', import.meta.url))
const KEY = join(FIXTURES, 'keys/server.key')
const CERT = join(FIXTURES, 'keys/server.crt')

const cli = (...pairs: [string, string][]): ConfigEntry[] => pairs.map(([name, value], i) => ({ name, value, file: COMMAND_LINE, line: i + 1 }))
const load = (file: string, ...more: [string, string][]) => loadConfig(cli(['config', file], ...more))
// The configuration without where things were set (vhost sources, option locations), which names the files.
const sourceless = ({ locations: _, ...cfg }: TitusConfig) => ({ ...cfg, vhosts: cfg.vhosts.map(({ source: _s, locations: _l, ...v }) => v) })

t.test('a titus.conf.example-shaped file loads, relative paths resolved against its directory', async t => {
  const cfg = load(join(FIXTURES, 'example.conf'))
  t.same(cfg.listen, [{ host: '::', port: 8443 }])
  t.match(cfg, { daemon: false, transparent: 'no', minSpareChildren: 5, maxChildren: 100, maxHandshakeTime: 20, isolation: 'strict', logFormat: 'text' })
  t.match(cfg, { networkUser: 'titus', networkGroup: 'nogroup', keyserverUser: 'titus-keys', keyserverGroup: 'nogroup' })
  t.equal(cfg.vhosts.length, 3)
  const [byAddress, byName, fallback] = cfg.vhosts as [TitusConfig['vhosts'][0], TitusConfig['vhosts'][0], TitusConfig['vhosts'][0]]
  t.same(byAddress.match, { localAddress: '192.0.2.5' })
  t.same(byName.match, { sniNames: ['www.example.com'] })
  t.same(fallback.match, {})
  t.same(cfg.vhosts.map(v => [v.id, v.source]), [
    [1, `${FIXTURES}example.conf:31`],
    [2, `${FIXTURES}example.conf:44`],
    [3, `${FIXTURES}example.conf:59`],
  ])
  for (const v of cfg.vhosts) {
    t.equal(v.key, KEY)
    t.equal(v.cert, CERT)
    t.equal(v.backend, '127.0.0.1')
    // Global TLS settings below the vhosts are still their defaults: titus 0.4 applies globals wherever they are.
    t.same(v.cipherSuites12, [0xc030, 0x009f, 0xc02f, 0x009e], 'the example ciphers line, AEAD suites only')
    t.same(v.cipherSuites13, [0x1301, 0x1302, 0x1303])
    t.equal(v.honorClientCipherOrder, false)
  }
  t.same(cfg.vhosts.map(v => v.backendPort), [6443, 7443, 8443])
  t.same(byAddress.groups, [23], 'ecdhcurve prime256v1, and RFC 3526 group 14 is not negotiable')
  t.same(byAddress.dhParams, { kind: 'rfc3526', bits: 2048 })
  t.equal(byName.tls13, false)
  t.equal(byName.dhParams.kind, 'pem')
  if (byName.dhParams.kind === 'pem') {
    t.equal(byName.dhParams.file, join(FIXTURES, 'dh-ffdhe2048.pem'))
    t.equal(byName.dhParams.p.length, 256)
    t.same([...byName.dhParams.g], [2])
  }
})

t.test('the TOML equivalent gives the same configuration', async t => {
  t.same(sourceless(load(join(FIXTURES, 'example.toml'))), sourceless(load(join(FIXTURES, 'example.conf'))))
  const lines = load(join(FIXTURES, 'example.toml')).vhosts.map(v => v.source)
  t.same(lines, [`${FIXTURES}example.toml:20`, `${FIXTURES}example.toml:27`, `${FIXTURES}example.toml:36`])
})

t.test('describeConfig round-trips: dump, parse, resolve gives the same configuration', async t => {
  const cases: [string, TitusConfig][] = [
    ['example.conf', load(join(FIXTURES, 'example.conf'))],
    ['implicit vhost, every option off its default', loadConfig(cli(
      ['listen', '127.0.0.1:0'], ['listen', '[::1]:8443'], ['daemon', 'yes'], ['pid-file', '/run/titus.pid'], ['transparent', 'backend-only'],
      ['min-spare-children', '0'], ['max-children', '7'], ['max-handshake-time', '3'], ['shutdown-timeout', '0'], ['network-user', 'n'], ['network-group', 'ng'],
      ['keyserver-user', 'k'], ['keyserver-group', 'kg'], ['chroot', '/'], ['isolation', 'pooled'], ['log-format', 'json'],
      ['key', KEY], ['cert', CERT], ['backend', 'backend.internal'], ['backend-port', '80'], ['ciphers', 'CHACHA20:ECDSA'],
      ['ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256'], ['honor-client-cipher-order', 'yes'], ['dhgroup', '16:ffdhe4096:ffdhe2048'],
      ['ecdhcurve', 'secp384r1,x25519'], ['alpn', 'h2,http/1.1'], ['tlsv1.2', 'no'], ['compression', 'no'], ['sslv3', 'no'],
      ['tlsv1', 'no'], ['tlsv1.1', 'no'], ['extended-master-secret', 'no'],
    ))],
    ['transparent yes', loadConfig(cli(['port', '443'], ['transparent', 'yes'], ['key', KEY], ['cert', CERT], ['tlsv1.3', 'off']))],
  ]
  for (const [name, cfg] of cases) {
    const text = describeConfig(cfg)
    const again = resolveConfig(parseTitusConf(text, join(FIXTURES, 'dump.conf')))
    t.same(sourceless(again), sourceless(cfg), name)
    t.equal(describeConfig(again).replace(/from .*dump\.conf:\d+/g, ''), text.replace(/from .*example\.conf:\d+/g, ''), `${name}: dump is stable`)
  }
})

t.test('includes: config and config-directory, in place, lexical order, hidden files and directories skipped', async t => {
  const dir = t.testdir({
    'main.conf': `port 1\nconfig-directory conf.d\nmax-children 9\nconfig sub/last.conf\n`,
    'conf.d': {
      '20-b.conf': `max-children 2\nvhost\n\tsni-name b\n`,
      '10-a.conf': `max-children 1\nmin-spare-children 1\nvhost\n\tsni-name a\n`,
      '.hidden.conf': `max-children 666\n`,
      'subdir': { 'x.conf': 'max-children 777\n' },
      '30-c.toml': `min-spare-children = 3\n[[vhost]]\nsni-name = "c"\n`,
    },
    'sub': { 'last.conf': `key ../k\ncert ../c\nbackend ::1\nbackend-port 9\n` },
  })
  const cfg = load(join(dir, 'main.conf'))
  t.equal(cfg.maxChildren, 9, 'a line after the include overrides the included files')
  t.equal(cfg.minSpareChildren, 3, 'files read in lexical order: 30-c.toml last')
  t.same(cfg.vhosts.map(v => [v.id, v.match.sniNames]), [[1, ['a']], [2, ['b']], [3, ['c']]])
  t.same(cfg.vhosts.map(v => v.source), [`${dir}/conf.d/10-a.conf:3`, `${dir}/conf.d/20-b.conf:2`, `${dir}/conf.d/30-c.toml:2`])
  t.equal(cfg.vhosts[0]!.key, join(dir, 'k'), 'relative to the including file (sub/), not the working directory')
})

t.test('precedence: command line over files whatever the order, later over earlier, vhost over global', async t => {
  const dir = t.testdir({
    'a.conf': `port 1\nlisten 127.0.0.1:2\nbackend-port 10\nbackend-port 11\nkey k\ncert c\nbackend 127.0.0.1\nvhost\n\tbackend-port 12\nvhost\n\tsni-name x\n`,
  })
  const file = join(dir, 'a.conf')
  const fromFile = loadConfig(cli(['config', file]))
  t.same(fromFile.listen, [{ host: '::', port: 1 }, { host: '127.0.0.1', port: 2 }])
  t.same(fromFile.vhosts.map(v => v.backendPort), [12, 11], 'the later global wins; a vhost value beats the global one')
  const overridden = loadConfig(cli(['backend-port', '20'], ['config', file], ['listen', '[::1]:3']))
  t.same(overridden.listen, [{ host: '::1', port: 3 }], 'command-line listeners replace all of the file ones')
  t.same(overridden.vhosts.map(v => v.backendPort), [12, 20], 'the command line sets the global default, not vhost values')
  t.equal(overridden.vhosts[0]!.key, join(dir, 'k'))
})

t.test('titus 0.4 syntax details', async t => {
  const entries = parseTitusConf(
    '  port 443  \r\n#comment\nvhost\n\n# column-one comment does not end the block\n\tkey\t \t/a b/key  \n  cert /c\nbackend x\n   vhost\n\tsni-name ""\n',
    'f.conf',
  )
  t.same(entries, [
    { name: 'port', value: '443', file: 'f.conf', line: 1 },
    { name: 'vhost', value: '', file: 'f.conf', line: 3, vhost: 1 },
    { name: 'key', value: '/a b/key', file: 'f.conf', line: 6, vhost: 1 },
    { name: 'cert', value: '/c', file: 'f.conf', line: 7, vhost: 1 },
    { name: 'backend', value: 'x', file: 'f.conf', line: 8 },
    { name: 'vhost', value: '', file: 'f.conf', line: 9, vhost: 2 },
    { name: 'sni-name', value: '""', file: 'f.conf', line: 10, vhost: 2 },
  ])
  const bools = resolveConfig([...cli(['key', '/k'], ['cert', '/c'], ['backend', 'b'], ['backend-port', '1']), ...cli(['daemon', 'TRUE'], ['tlsv1.2', 'off'], ['tlsv1.3', '1'])])
  t.equal(bools.daemon, true)
  t.equal(bools.vhosts[0]!.tls12, false)
  t.same(bools.vhosts[0]!.match, {}, 'the implicit vhost matches everything')
  t.equal(bools.vhosts[0]!.id, 0)
})

t.test('TOML details: arrays, dotted keys, booleans', async t => {
  const entries = parseTomlConfig(
    `listen = ["127.0.0.1:8443", "[::1]:8443"]\nalpn = ["h2", "http/1.1"]\ntlsv1.3 = false\n\n[[vhost]]\nsni-name = ["a.example", '""']\n"tlsv1.2" = true\n`,
    't.toml',
  )
  t.same(entries, [
    { name: 'listen', value: '127.0.0.1:8443', file: 't.toml', line: 1 },
    { name: 'listen', value: '[::1]:8443', file: 't.toml', line: 1 },
    { name: 'alpn', value: 'h2,http/1.1', file: 't.toml', line: 2 },
    { name: 'tlsv1.3', value: 'no', file: 't.toml', line: 3 },
    { name: 'vhost', value: '', file: 't.toml', line: 5, vhost: 1 },
    { name: 'sni-name', value: 'a.example', file: 't.toml', line: 6, vhost: 1 },
    { name: 'sni-name', value: '""', file: 't.toml', line: 6, vhost: 1 },
    { name: 'tlsv1.2', value: 'yes', file: 't.toml', line: 7, vhost: 1 },
  ])
})

t.test('defaults', async t => {
  const cfg = resolveConfig(cli(['key', '/k'], ['cert', '/c'], ['backend', 'localhost'], ['backend-port', '80']))
  t.same(cfg.listen, [], 'no listener: the caller decides whether that is an error')
  const v = cfg.vhosts[0]!
  t.same(v.cipherSuites12, [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0x009e, 0x009f, 0xccaa])
  t.same(v.groups, [29, 23, 24, 256, 257])
  t.same(v.dhParams, { kind: 'ffdhe', bits: 2048 })
  t.match(v, { tls12: true, tls13: true, honorClientCipherOrder: false, alpn: undefined })
})

t.test('files are read through the given readFile and listDir', async t => {
  const files: Record<string, string> = { '/etc/titus/titus.conf': 'config-directory /etc/titus/d\n', '/etc/titus/d/x.conf': 'key /k\ncert /c\nbackend b\nbackend-port 1\n' }
  const cfg = loadConfig(cli(['config', '/etc/titus/titus.conf']), p => {
    const text = files[p]
    if (text === undefined) throw new Error(`ENOENT: ${p}`)
    return text
  }, () => ['x.conf'])
  t.equal(cfg.vhosts[0]!.key, '/k')
  t.throws(() => loadConfig(cli(['config', '/nope.conf']), () => { throw new Error('ENOENT') }), ConfigError)
})
