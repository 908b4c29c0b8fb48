// `titus --check-config` through the real CLI: every option off its default, as titus.conf, as TOML and spread over a
// config-directory (a hidden file in it skipped); the printed effective configuration shows each value, and read back
// with --check-config it prints itself again.
import t, { type Test } from 'tap'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTitusConf, type ConfigEntry } from '../src/config/index.js'
import { createCertSet, type CertSet } from './support/certs.js'
import { run } from './support/process.js'
import { TITUS_BUNDLE } from './support/titus.js'

const FIXTURES = fileURLToPath(new URL('./fixtures/config/', import.meta.url))
const DH_PEM = join(FIXTURES, 'dh-ffdhe2048.pem')
const certs = createCertSet(t)

// A directory for one case's files: the certificates copied in (so that files can name them relatively), a DH
// parameters file, and an empty directory for chroot, owned by root as chroot demands (the tests run as root).
function caseDir(certs: CertSet): string {
  const dir = mkdtempSync(join(tmpdir(), 'titus-config-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const kind of ['rsa', 'p256', 'ed25519'] as const) {
    copyFileSync(certs.leaves[kind].key, join(dir, `${kind}.key`))
    copyFileSync(certs.leaves[kind].chain, join(dir, `${kind}.crt`))
  }
  copyFileSync(DH_PEM, join(dir, 'dh.pem'))
  mkdirSync(join(dir, 'empty'))
  return dir
}

// The same settings in each format. Global vhost options are inherited by the vhosts that do not set them, and
// vhost 3, an empty block, gets all of them. Values are written in forms that the output normalizes (P-384, a
// ::ffff: address, a non-AEAD suite, relative paths), so that what is printed is what titus understood. Files are
// named relative to the case directory, from a file `up` below it. compression, sslv3, tlsv1 and tlsv1.1 accept only
// their default, no: they are set, but cannot be off it (and --check-config does not print them).
const globalsConf = (up = '') => `# every global option off its default
port                      8443
listen                    127.0.0.1:9443
listen                    [::1]:9444
daemon                    yes
pid-file                  ${up}run/titus.pid
transparent               backend-only
min-spare-children        0
max-children              7
max-handshake-time        3
shutdown-timeout          5
network-user              nobody
network-group             nogroup
keyserver-user            daemon
keyserver-group           daemon
chroot                    ${up}empty
isolation                 pooled
log-format                json
# vhost options as globals: every vhost's default
key                       ${up}ed25519.key
cert                      ${up}ed25519.crt
backend                   backend.internal
backend-port              8080
extended-master-secret    no
honor-client-cipher-order yes
ciphersuites              TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384
ecdhcurve                 P-384,x25519
alpn                      h2,http/1.1
compression               no
sslv3                     no
tlsv1                     no
tlsv1.1                   no
`
const vhostAConf = (up = '') => `vhost
	local-address             ::ffff:127.0.0.1
	local-port                9443
	sni-name                  a.example
	sni-name                  ""
	key                       ${up}p256.key
	cert                      ${up}p256.crt
	backend-port              8081
	tlsv1.2                   no
	ciphers                   ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA
	dhgroup                   ffdhe4096:ffdhe2048
`
const vhostBConf = (up = '') => `vhost
	sni-name                  b.example
	key                       ${up}rsa.key
	cert                      ${up}rsa.crt
	backend                   ::1
	tlsv1.3                   no
	ciphers                   DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256
	dhgroup                   ${up}dh.pem
`

const globalsToml = (up = '') => `# every global option off its default
port = 8443
listen = ["127.0.0.1:9443", "[::1]:9444"]
daemon = true
pid-file = "${up}run/titus.pid"
transparent = "backend-only"
min-spare-children = 0
max-children = 7
max-handshake-time = 3
shutdown-timeout = 5
network-user = "nobody"
network-group = "nogroup"
keyserver-user = "daemon"
keyserver-group = "daemon"
chroot = "${up}empty"
isolation = "pooled"
log-format = "json"
key = "${up}ed25519.key"
cert = "${up}ed25519.crt"
backend = "backend.internal"
backend-port = 8080
extended-master-secret = false
honor-client-cipher-order = true
ciphersuites = ["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384"]
ecdhcurve = "P-384,x25519"
alpn = ["h2", "http/1.1"]
compression = false
sslv3 = false
tlsv1 = false
"tlsv1.1" = false
`
const vhostAToml = (up = '') => `[[vhost]]
local-address = "::ffff:127.0.0.1"
local-port = 9443
sni-name = ["a.example", '""']
key = "${up}p256.key"
cert = "${up}p256.crt"
backend-port = 8081
"tlsv1.2" = false
ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA"
dhgroup = ["ffdhe4096", "ffdhe2048"]
`
const vhostBToml = (up = '') => `[[vhost]]
sni-name = "b.example"
key = "${up}rsa.key"
cert = "${up}rsa.crt"
backend = "::1"
"tlsv1.3" = false
ciphers = "DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"
dhgroup = "${up}dh.pem"
`

// What --check-config must print for the settings above, option by option, in `dir`.
function expected(dir: string) {
  const inherited = {
    'backend': ['backend.internal'],
    'backend-port': ['8080'],
    'tlsv1.2': ['yes'],
    'tlsv1.3': ['yes'],
    'extended-master-secret': ['no'],
    'ciphersuites': ['TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384'],
    'honor-client-cipher-order': ['yes'],
    'ecdhcurve': ['secp384r1:x25519'],
    'alpn': ['h2,http/1.1'],
  }
  return {
    globals: {
      'listen': ['[::]:8443', '127.0.0.1:9443', '[::1]:9444'],
      'daemon': ['yes'],
      'pid-file': [join(dir, 'run/titus.pid')],
      'transparent': ['backend-only'],
      'min-spare-children': ['0'],
      'max-children': ['7'],
      'max-handshake-time': ['3'],
      'shutdown-timeout': ['5'],
      'network-user': ['nobody'],
      'network-group': ['nogroup'],
      'keyserver-user': ['daemon'],
      'keyserver-group': ['daemon'],
      'chroot': [join(dir, 'empty')],
      'isolation': ['pooled'],
      'log-format': ['json'],
    },
    vhosts: [
      {
        ...inherited,
        'local-address': ['127.0.0.1'],
        'local-port': ['9443'],
        'sni-name': ['a.example', '""'],
        'key': [join(dir, 'p256.key')],
        'cert': [join(dir, 'p256.crt')],
        'backend-port': ['8081'],
        'tlsv1.2': ['no'],
        'ciphers': ['ECDHE-ECDSA-CHACHA20-POLY1305'],
        'dhgroup': ['ffdhe4096:ffdhe2048'],
      },
      {
        ...inherited,
        'sni-name': ['b.example'],
        'key': [join(dir, 'rsa.key')],
        'cert': [join(dir, 'rsa.crt')],
        'backend': ['::1'],
        'tlsv1.3': ['no'],
        'ciphers': ['DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256'],
        'dhgroup': [join(dir, 'dh.pem')],
      },
      {
        ...inherited,
        'key': [join(dir, 'ed25519.key')],
        'cert': [join(dir, 'ed25519.crt')],
        // Left at their defaults: the printed defaults.
        'ciphers': [
          'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:' +
            'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305',
        ],
        'dhgroup': ['ffdhe2048:ffdhe3072'],
      },
    ],
  }
}

// Option name → values in order, for the global entries (vhost undefined) or those of one vhost block.
function settings(entries: ConfigEntry[], vhost: number | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const e of entries) if (e.vhost === vhost && e.name !== 'vhost') (out[e.name] ??= []).push(e.value)
  return out
}

async function checkConfig(t: Test, file: string): Promise<string> {
  const r = await run(t, process.execPath, [TITUS_BUNDLE, '--check-config', '--config', file], { timeoutMs: 30000 })
  t.equal(r.code, 0, `--check-config --config ${file} exits 0`, { stderr: r.stderr })
  t.equal(r.stderr, '', 'no errors or warnings')
  return r.stdout.toString()
}

// The `# vhost N, from FILE:LINE` comments name where each block was written; the rest must not depend on it.
const withoutSources = (text: string) => text.replace(/^# vhost (\d+), from .*$/gm, '# vhost $1')

// Checks the effective configuration of `file` and its round trip; returns the printed text.
async function checkEffective(t: Test, dir: string, file: string): Promise<string> {
  const printed = await checkConfig(t, file)
  const entries = parseTitusConf(printed, 'printed')
  const want = expected(dir)
  t.same(settings(entries, undefined), want.globals, 'every global value, as set')
  const blocks = [...new Set(entries.map(e => e.vhost).filter(n => n !== undefined))]
  t.same(blocks, [1, 2, 3], 'three vhost blocks')
  want.vhosts.forEach((vhost, i) => t.same(settings(entries, i + 1), vhost, `vhost ${i + 1}: its own values, then the globals'`))

  const again = join(dir, 'effective.conf')
  writeFileSync(again, printed)
  t.equal(withoutSources(await checkConfig(t, again)), withoutSources(printed), 'the printed configuration, read back, prints the same')
  return printed
}

t.test('titus.conf with every option off its default, and an include', async t => {
  const dir = caseDir(certs)
  writeFileSync(join(dir, 'titus.conf'), `${globalsConf()}${vhostAConf()}config vhosts.conf\n`)
  writeFileSync(join(dir, 'vhosts.conf'), `${vhostBConf()}vhost\n`)
  await checkEffective(t, dir, join(dir, 'titus.conf'))
})

t.test('TOML with every option off its default: the same effective configuration', async t => {
  const dir = caseDir(certs)
  writeFileSync(join(dir, 'titus.toml'), `${globalsToml()}\n${vhostAToml()}\n${vhostBToml()}\n[[vhost]]\n`)
  const printed = await checkEffective(t, dir, join(dir, 'titus.toml'))
  t.match(printed, `# vhost 1, from ${join(dir, 'titus.toml')}:`, 'blocks located in the TOML file')
})

t.test('config-directory: files in lexical order, mixed formats, hidden files and subdirectories skipped', async t => {
  const dir = caseDir(certs)
  mkdirSync(join(dir, 'conf.d/sub'), { recursive: true })
  // Each of the skipped files would change the output (or fail it) if it were read.
  writeFileSync(join(dir, 'conf.d/.00-hidden.conf'), 'max-children 666\nvhost\n\tsni-name hidden.example\n')
  writeFileSync(join(dir, 'conf.d/sub/00-nested.conf'), 'log-format text\n')
  writeFileSync(join(dir, 'conf.d/.zz-editor-backup.toml'), 'this is not TOML\n')
  // Read by name, not in the order written or listed: the globals of 10- first, then vhost 1 (20-), then 2 and 3 (30-).
  writeFileSync(join(dir, 'conf.d/30-vhosts.toml'), `${vhostBToml('../')}\n[[vhost]]\n`)
  writeFileSync(join(dir, 'conf.d/20-vhost-a.conf'), vhostAConf('../'))
  writeFileSync(join(dir, 'conf.d/10-globals.conf'), globalsConf('../'))
  writeFileSync(join(dir, 'titus.conf'), 'config-directory conf.d\n')
  const printed = await checkEffective(t, dir, join(dir, 'titus.conf'))
  t.match(printed, `# vhost 2, from ${join(dir, 'conf.d/30-vhosts.toml')}:1`)
  t.notMatch(printed, /hidden|666/)
})

// titus 0.4 installations chroot into /var/empty, which must exist and be root's: made for this test if it is missing.
function varEmpty(t: Test): void {
  if (existsSync('/var/empty')) return
  mkdirSync('/var/empty', { mode: 0o555 })
  t.teardown(() => rmdirSync('/var/empty'))
}

t.test('a file in the layout of a titus 0.4 installation loads as it is, and with its TLS lines uncommented', async t => {
  varEmpty(t)
  const file = join(FIXTURES, 'titus-0.4.conf')
  const keys = { key: [join(FIXTURES, 'keys/server.key')], cert: [join(FIXTURES, 'keys/server.crt')], backend: ['127.0.0.1'] }
  const tlsDefaults = { 'ciphersuites': ['TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'], 'ecdhcurve': ['x25519:secp256r1:secp384r1'], 'dhgroup': ['ffdhe2048:ffdhe3072'], 'honor-client-cipher-order': ['no'], 'tlsv1.2': ['yes'], 'tlsv1.3': ['yes'] }
  const entries = parseTitusConf(await checkConfig(t, file), 'printed')
  t.match(settings(entries, undefined), {
    'listen': ['[::]:443'], 'daemon': ['no'], 'min-spare-children': ['3'], 'max-children': ['250'], 'max-handshake-time': ['15'], 'chroot': ['/var/empty'],
    'network-user': ['titus-net'], 'network-group': ['nogroup'], 'keyserver-user': ['titus-keys'], 'keyserver-group': ['nogroup'],
  })
  t.match(settings(entries, 1), { 'sni-name': ['mail.example.net'], ...keys, 'backend-port': ['8081'], ...tlsDefaults })
  t.match(settings(entries, 2), { 'local-address': ['127.0.0.1'], 'sni-name': ['""'], ...keys, 'backend-port': ['8082'], ...tlsDefaults })
  t.same(Object.keys(settings(entries, 3)).filter(name => ['local-address', 'local-port', 'sni-name'].includes(name)), [], 'the last vhost matches everything')
  t.match(settings(entries, 3), { ...keys, 'backend-port': ['8080'], ...tlsDefaults })

  // A titus 0.4 user who turns the TLS lines on; the copy names the fixture's keys absolutely.
  const dir = mkdtempSync(join(tmpdir(), 'titus-config-0.4-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const uncommented = readFileSync(file, 'utf8').replaceAll(/^#(ciphers|dhgroup|ecdhcurve|compression|sslv3|tlsv1|honor-client-cipher-order)\b/gm, '$1')
  t.not(uncommented, readFileSync(file, 'utf8'))
  writeFileSync(join(dir, 'titus.conf'), uncommented.replaceAll(/\tkeys\//g, `\t${FIXTURES}keys/`))
  const tls = parseTitusConf(await checkConfig(t, join(dir, 'titus.conf')), 'printed')
  for (const vhost of [1, 2, 3]) {
    t.match(settings(tls, vhost), {
      ...keys,
      // Only the AEAD suites titus implements that fit the EC key's family and the RSA one, in the order given.
      'ciphers': ['ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384'],
      'ecdhcurve': ['secp256r1'],
      'dhgroup': ['14'],
      'honor-client-cipher-order': ['no'],
      'tlsv1.2': ['yes'],
    }, `vhost ${vhost}`)
  }
})
