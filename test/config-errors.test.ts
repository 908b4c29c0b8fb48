// Every kind of configuration error names file, line and option; the CLI exits with titus 0.4's status 5.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { COMMAND_LINE, ConfigError, EXIT_CONFIG, loadConfig, type ConfigEntry } from '../src/config/index.js'
import { startEchoBackend } from './support/backends.js'
import { createCertSet } from './support/certs.js'
import { nodeClient } from './support/clients.js'
import { startTitus, TITUS_BUNDLE } from './support/titus.js'
import { ALERT } from './support/wire.js'

const FIXTURES = fileURLToPath(new URL('./fixtures/config/', import.meta.url))
const BUNDLE = fileURLToPath(new URL('../dist/titus.js', import.meta.url))
const VALID = 'key k\ncert c\nbackend 127.0.0.1\nbackend-port 80\n'

const loadFrom = (dir: string, name = 'titus.conf') => {
  const file = join(dir, name)
  return () => loadConfig([{ name: 'config', value: file, file: COMMAND_LINE, line: 2 }])
}

// The assertions used here, shared by the top-level t and subtests.
type Asserts = Pick<typeof t, 'fail' | 'match' | 'equal'>

function expectError(t: Asserts, f: () => unknown, file: string, line: number, option: string, problem: RegExp) {
  try {
    f()
    t.fail(`expected a ConfigError for ${option}`)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    t.match(err, { file, line, option }, `${option}: ${err.message}`)
    t.match(err.problem, problem)
    t.equal(err.message, `${line > 0 ? `${file}:${line}` : file}: ${option}: ${err.problem}`)
  }
}

// [text of titus.conf, line, option, problem]
const FILE_ERRORS: [string, number, string, RegExp][] = [
  [`${VALID}frobnicate yes\n`, 5, 'frobnicate', /unknown option/],
  [`${VALID}port\n`, 5, 'port', /missing value/],
  [`${VALID}max-children many\n`, 5, 'max-children', /not a whole number/],
  [`${VALID}port 65536\n`, 5, 'port', /out of range \(0-65535\)/],
  [`${VALID}backend-port 0\n`, 5, 'backend-port', /out of range \(1-65535\)/],
  [`${VALID}daemon maybe\n`, 5, 'daemon', /not yes or no/],
  [`${VALID}isolation paranoid\n`, 5, 'isolation', /not one of strict, pooled, none/],
  [`${VALID}listen example.com:443\n`, 5, 'listen', /not an IP v4 address/],
  [`${VALID}listen ::1:443\n`, 5, 'listen', /IPv6 address in brackets/],
  [`${VALID}listen [::1]:99999\n`, 5, 'listen', /out of range/],
  [`${VALID}port 443\nlisten [::]:443\n`, 6, 'listen', /\[::\]:443 is already configured at .*titus\.conf:5/],
  [`${VALID}sni-name a.example\n`, 5, 'sni-name', /only allowed inside a vhost block/],
  [`${VALID}vhost\n\tlocal-address www.example.com\n`, 6, 'local-address', /not an IP address/],
  [`${VALID}vhost\n\tport 443\n`, 6, 'port', /global option/],
  [`${VALID}vhost\n\tconfig other.conf\n`, 6, 'config', /global option/],
  [`${VALID}vhost foo\n`, 5, 'vhost', /takes no value/],
  [`${VALID}vhost\n\tvhost\n`, 6, 'vhost', /cannot nest/],
  [`${VALID}compression yes\n`, 5, 'compression', /CRIME/],
  [`${VALID}sslv3 yes\n`, 5, 'sslv3', /RFC 8996/],
  [`${VALID}tlsv1 on\n`, 5, 'tlsv1', /TLS 1.0 is insecure/],
  [`${VALID}tlsv1.1 yes\n`, 5, 'tlsv1.1', /TLS 1.1 is insecure/],
  [`${VALID}tlsv1.2 no\ntlsv1.3 no\n`, 6, 'tlsv1.3', /both disabled/],
  [`${VALID}vhost\n\ttlsv1.2 no\ntlsv1.3 no\n`, 5, 'tlsv1.3', /both disabled/],
  [`cert c\nbackend b\nbackend-port 1\nvhost\n\tsni-name x\n`, 4, 'key', /no private key file \(key\) given for this vhost/],
  [`key k\nbackend b\nbackend-port 1\nvhost\n`, 4, 'cert', /no certificate file/],
  [`key k\ncert c\nbackend-port 1\nvhost\n`, 4, 'backend', /no backend host/],
  [`key k\ncert c\nbackend b\nvhost\n`, 4, 'backend-port', /no backend port/],
  [`${VALID}transparent yes\n`, 3, 'backend', /cannot be used with transparent yes/],
  [`${VALID}ciphers AES:#\n`, 5, 'ciphers', /position 5/],
  [`${VALID}ciphers RC4:3DES:kRSA\n`, 5, 'ciphers', /selects no supported TLS 1.2 cipher suite/],
  [`${VALID}ciphersuites TLS_AES_128_CCM_8_SHA256\n`, 5, 'ciphersuites', /no supported TLS 1.3/],
  [`${VALID}ecdhcurve x25519:secp521r1\n`, 5, 'ecdhcurve', /secp521r1 is not supported/],
  [`${VALID}ecdhcurve curve9\n`, 5, 'ecdhcurve', /unknown curve "curve9"/],
  [`${VALID}dhgroup 17\n`, 5, 'dhgroup', /neither a group .* nor a readable DH parameters file/],
  [`${VALID}dhgroup ffdhe2048:14\n`, 5, 'dhgroup', /can only be the first entry/],
  [`${VALID}dhgroup ${FIXTURES}dh-1024.pem\n`, 5, 'dhgroup', /1024 bits; at least 2048/],
  [`${VALID}dhgroup ${FIXTURES}dh-x942.pem\n`, 5, 'dhgroup', /X9.42/],
  [`${VALID}dhgroup ${FIXTURES}keys/server.crt\n`, 5, 'dhgroup', /no "BEGIN DH PARAMETERS" block/],
  [`${VALID}alpn h2,,http/1.1\n`, 5, 'alpn', /1 to 255 bytes/],
  [`${VALID}config missing.conf\n`, 5, 'config', /cannot read .*missing\.conf: ENOENT/],
  [`${VALID}config-directory missing.d\n`, 5, 'config-directory', /cannot read directory .*missing\.d/],
  [`${VALID}config titus.conf\n`, 5, 'config', /include loop: .*titus\.conf -> .*titus\.conf/],
]

t.test('titus.conf errors', async t => {
  for (const [text, line, option, problem] of FILE_ERRORS) {
    const dir = t.testdir({ 'titus.conf': text })
    expectError(t, loadFrom(dir), join(dir, 'titus.conf'), line, option, problem)
  }
})

t.test('include loops through several files name the chain', async t => {
  const dir = t.testdir({ 'a.conf': 'config b.conf\n', 'b.conf': '\n\nconfig a.conf\n' })
  expectError(t, loadFrom(dir, 'a.conf'), join(dir, 'b.conf'), 3, 'config', /include loop: .*a\.conf -> .*b\.conf -> .*a\.conf$/)
})

t.test('TOML errors', async t => {
  const cases: [string, number, string, RegExp][] = [
    ['port = 443\nkey = \n', 2, 'toml', /.+/],
    ['port = 443\n\n[[vhost]]\nbackend-port = 1.5\n', 4, 'backend-port', /must be a string, an integer or a boolean/],
    ['port = [1, 2]\n', 1, 'port', /single value, not an array/],
    ['[vhost]\nkey = "k"\n', 1, 'vhost', /\[\[vhost\]\]/],
    ['port = 1\n[other]\nx = 1\n', 2, 'other.x', /unknown option/],
    ['tlsv1 = false\ntlsv1.2 = true\n', 2, 'toml', /.+/],
    [`${VALID.replace(/ (.*)/g, ' = "$1"')}\n[[vhost]]\nsni-name = "a"\n  port = 8\n`, 8, 'port', /global option/],
  ]
  for (const [text, line, option, problem] of cases) {
    const dir = t.testdir({ 't.toml': text })
    expectError(t, loadFrom(dir, 't.toml'), join(dir, 't.toml'), line, option, problem)
  }
})

t.test('command-line errors name the argument position', async t => {
  const entries = (...pairs: [string, string][]): ConfigEntry[] => pairs.map(([name, value], i) => ({ name, value, file: COMMAND_LINE, line: 2 * i + 1 }))
  expectError(t, () => loadConfig(entries(['key', 'k'], ['port', 'x'])), COMMAND_LINE, 3, 'port', /not a whole number/)
  expectError(t, () => loadConfig(entries(['sni-name', 'x'])), COMMAND_LINE, 1, 'sni-name', /vhost blocks can only be written in configuration files/)
  expectError(t, () => loadConfig(entries(['cert', 'c'], ['backend', 'b'], ['backend-port', '1'])), '<configuration>', 0, 'key', /no private key file/)
})

t.test('titus --check-config exits 5 with the message, 0 with the effective configuration', { skip: !existsSync(BUNDLE) && 'dist/titus.js not built' }, async t => {
  const dir = t.testdir({ 'bad.conf': `${VALID}vhost\n\tciphers RC4\n`, 'good.conf': `port 8443\nnetwork-user nobody\nkeyserver-user nobody\nkey ${FIXTURES}keys/server.key\ncert ${FIXTURES}keys/server.crt\nbackend 127.0.0.1\nbackend-port 80\n` })
  const bad = spawnSync(process.execPath, [BUNDLE, '--check-config', '--config', join(dir, 'bad.conf')], { encoding: 'utf8', timeout: 30_000 })
  t.equal(bad.status, EXIT_CONFIG)
  t.match(bad.stderr, `${join(dir, 'bad.conf')}:6: ciphers: selects no supported TLS 1.2 cipher suite`)
  const good = spawnSync(process.execPath, [BUNDLE, '--check-config', '--config', join(dir, 'good.conf'), '--max-children', '4'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(good.status, 0, good.stderr)
  t.match(good.stdout, /^listen +\[::\]:8443$/m)
  t.match(good.stdout, /^max-children +4$/m)
  t.match(good.stdout, /^backend-port +80$/m)
})

// Key and certificate files are checked when the configuration is loaded (--check-config and start-up), not first by
// the keyserver: each problem names the file, line and option, exit 5.
const checkConfig = (...args: string[]) => spawnSync(process.execPath, [BUNDLE, '--check-config', ...args], { encoding: 'utf8', timeout: 30_000 })
const FIXTURE_KEY = `${FIXTURES}keys/server.key` // EC P-256, the key of FIXTURE_CERT
const FIXTURE_CERT = `${FIXTURES}keys/server.crt`
const ecKeyPem = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey
const rsaKeyPem = (modulusLength: number) => generateKeyPairSync('rsa', { modulusLength, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey
// A titus.conf with the key on line 3 and the certificate on line 4.
const withCredentials = (key: string, cert: string, more = '') =>
  `port 1\nnetwork-user nobody\nkey ${key}\ncert ${cert}\nkeyserver-user nobody\nbackend 127.0.0.1\nbackend-port 80\n${more}`

t.test('key and certificate problems name file, line and option', { skip: !existsSync(BUNDLE) && 'dist/titus.js not built' }, async t => {
  const dir = t.testdir({ 'junk.key': 'not a key\n', 'other.key': ecKeyPem('P-256'), 'rsa1024.key': rsaKeyPem(1024), 'k1.key': ecKeyPem('secp256k1') })
  const conf = join(dir, 'titus.conf')
  const file = (name: string) => join(dir, name)
  // [key, cert, line, option, problem]
  const cases: [string, string, number, string, string][] = [
    [file('missing.key'), FIXTURE_CERT, 3, 'key', `cannot read ${file('missing.key')}: ENOENT`],
    [FIXTURE_KEY, file('missing.crt'), 4, 'cert', `cannot read ${file('missing.crt')}: ENOENT`],
    [file('junk.key'), FIXTURE_CERT, 3, 'key', `${file('junk.key')} is not a usable private key`],
    [FIXTURE_CERT, FIXTURE_CERT, 3, 'key', `${FIXTURE_CERT} holds a certificate, not a private key`],
    [file('other.key'), FIXTURE_CERT, 3, 'key', `${file('other.key')} does not match the certificate ${FIXTURE_CERT}`],
    [file('rsa1024.key'), FIXTURE_CERT, 3, 'key', `${file('rsa1024.key')}: RSA key of 1024 bits; at least 2048 are needed`],
    [file('k1.key'), FIXTURE_CERT, 3, 'key', `${file('k1.key')}: unsupported EC curve secp256k1`],
    [FIXTURE_KEY, file('junk.key'), 4, 'cert', `${file('junk.key')}: no CERTIFICATE block found`],
    [FIXTURE_KEY, FIXTURE_KEY, 4, 'cert', `${FIXTURE_KEY}: certificate file contains a PRIVATE KEY block`],
  ]
  for (const [key, cert, line, option, problem] of cases) {
    writeFileSync(conf, withCredentials(key, cert))
    const r = checkConfig('--config', conf)
    t.equal(r.status, EXIT_CONFIG, `${problem}: exit 5`)
    t.match(r.stderr, `titus: ${conf}:${line}: ${option}: ${problem}`, problem)
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  }
  writeFileSync(conf, withCredentials(FIXTURE_KEY, FIXTURE_CERT))
  t.equal(checkConfig('--config', conf).status, 0, 'control: the fixture key and certificate pass')
  // Given on the command line, the location is the argument's position.
  const cli = checkConfig('--config', conf, '--key', file('other.key'))
  t.equal(cli.status, EXIT_CONFIG)
  t.match(cli.stderr, `titus: ${COMMAND_LINE}:5: key: ${file('other.key')} does not match the certificate ${FIXTURE_CERT}`)
})

t.test('start-up refuses a junk key with the configuration error, before the keyserver sees it', { skip: !existsSync(BUNDLE) && 'dist/titus.js not built' }, async t => {
  const dir = t.testdir({ 'junk.key': 'not a key\n' })
  const conf = join(dir, 'titus.conf')
  writeFileSync(conf, withCredentials(join(dir, 'junk.key'), FIXTURE_CERT).replace('port 1', 'listen 127.0.0.1:0'))
  const r = spawnSync(process.execPath, [BUNDLE, '--config', conf], { encoding: 'utf8', timeout: 30_000 })
  t.equal(r.status, EXIT_CONFIG, r.stderr)
  t.equal(r.stderr, `titus: ${conf}:3: key: ${join(dir, 'junk.key')} is not a usable private key: ${/: (error:[^\n]*)/.exec(r.stderr)?.[1]}\n`, 'one line, no keyserver start, no stack trace')
})

t.test('start-up refuses a certificate file that also holds the private key, naming the file', { skip: !existsSync(BUNDLE) && 'dist/titus.js not built' }, async t => {
  const dir = t.testdir({ 'combined.pem': readFileSync(FIXTURE_CERT, 'utf8') + readFileSync(FIXTURE_KEY, 'utf8') })
  const conf = join(dir, 'titus.conf')
  writeFileSync(conf, withCredentials(FIXTURE_KEY, join(dir, 'combined.pem')).replace('port 1', 'listen 127.0.0.1:0'))
  const r = spawnSync(process.execPath, [BUNDLE, '--config', conf], { encoding: 'utf8', timeout: 30_000 })
  t.equal(r.status, EXIT_CONFIG, r.stderr)
  t.equal(r.stderr, `titus: ${conf}:4: cert: ${join(dir, 'combined.pem')}: certificate file contains a PRIVATE KEY block; keep the key in its own file\n`)
})

t.test('transparent other than no: --check-config shows it, starting refuses it, naming file, line and option', { skip: !existsSync(BUNDLE) && 'dist/titus.js not built' }, async t => {
  const dir = t.testdir({})
  const conf = join(dir, 'titus.conf')
  writeFileSync(conf, withCredentials(FIXTURE_KEY, FIXTURE_CERT, 'transparent backend-only\n').replace('port 1', 'listen 127.0.0.1:0'))
  const check = spawnSync(process.execPath, [BUNDLE, '--check-config', '--config', conf], { encoding: 'utf8', timeout: 30_000 })
  t.equal(check.status, 0, check.stderr)
  t.match(check.stdout, /^transparent\s+backend-only$/m)
  const r = spawnSync(process.execPath, [BUNDLE, '--config', conf], { encoding: 'utf8', timeout: 30_000 })
  t.equal(r.status, EXIT_CONFIG, r.stderr)
  t.equal(r.stderr, `titus: ${conf}:8: transparent: backend-only is not supported yet (IP_TRANSPARENT is planned through titus-launcher); only no runs\n`)
})

t.test('a key no TLS 1.2 suite fits: a warning while TLS 1.3 is on, an error without it', { skip: !existsSync(BUNDLE) && 'dist/titus.js not built' }, async t => {
  const dir = t.testdir({})
  const conf = join(dir, 'titus.conf')
  // The fixture key is EC; line 9 gives the vhost RSA-only TLS 1.2 suites.
  const rsaOnly = 'vhost\n\tciphers ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384\n'
  const problem = `no TLS 1.2 cipher suite fits the EC key ${FIXTURE_KEY} (ECDSA suites needed)`
  writeFileSync(conf, withCredentials(FIXTURE_KEY, FIXTURE_CERT, rsaOnly))
  const warned = checkConfig('--config', conf)
  t.equal(warned.status, 0, warned.stderr)
  t.match(warned.stderr, `titus: config-warning file=${conf} line=9 option=ciphers problem="${problem}: TLS 1.2 clients will fail the handshake"`)

  writeFileSync(conf, withCredentials(FIXTURE_KEY, FIXTURE_CERT, `${rsaOnly}\ttlsv1.3 no\n`))
  const refused = checkConfig('--config', conf)
  t.equal(refused.status, EXIT_CONFIG)
  t.match(refused.stderr, `titus: ${conf}:9: ciphers: ${problem}, and TLS 1.3 is off: no client could connect`)

  for (const [label, more] of [['ECDSA suites', 'vhost\n\tciphers ECDHE-ECDSA-AES128-GCM-SHA256\n'], ['tlsv1.2 off', `${rsaOnly}\ttlsv1.2 no\n`]]) {
    writeFileSync(conf, withCredentials(FIXTURE_KEY, FIXTURE_CERT, more))
    const quiet = checkConfig('--config', conf)
    t.equal(quiet.status, 0, `${label}: passes`)
    t.notMatch(quiet.stderr, /config-warning/, `${label}: no warning`)
  }
})

t.test('start-up warns too, and the warning is true: TLS 1.3 clients are served, TLS 1.2 clients get handshake_failure', { skip: !existsSync(TITUS_BUNDLE) && 'dist/titus.js not built' }, async t => {
  const certs = createCertSet(t)
  const echo = await startEchoBackend(t)
  const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.p256.key, cert: certs.leaves.p256.chain, args: ['--ciphers', 'ECDHE-RSA-AES128-GCM-SHA256'] })
  const warning = await titus.waitForLog(/config-warning/)
  t.match(warning, `file="${COMMAND_LINE}" line=`)
  t.match(warning, `option=ciphers problem="no TLS 1.2 cipher suite fits the EC key ${certs.leaves.p256.key} (ECDSA suites needed)`)
  const tls13 = await nodeClient(t, { port: titus.port, caFile: certs.caFile })
  t.ok(tls13.ok, 'a TLS 1.3 client is served', { detail: tls13.detail })
  const tls12 = await nodeClient(t, { port: titus.port, caFile: certs.caFile, tls12: true })
  t.equal(tls12.alert, ALERT.handshakeFailure, 'a TLS 1.2 client gets handshake_failure', { detail: tls12.detail })
})

t.test('sandbox users: an unknown or missing user names the option and where it was set', { skip: (!existsSync(BUNDLE) && 'dist/titus.js not built') || (process.getuid?.() !== 0 && 'sandbox users are checked only as root') }, async t => {
  const dir = t.testdir({})
  const conf = join(dir, 'titus.conf')
  writeFileSync(conf, withCredentials(FIXTURE_KEY, FIXTURE_CERT).replace('network-user nobody', 'network-user nosuchuser'))
  const unknown = checkConfig('--config', conf)
  t.equal(unknown.status, EXIT_CONFIG)
  t.equal(unknown.stderr, `titus: ${conf}:2: network-user: unknown user nosuchuser\n`)
  const cli = checkConfig('--config', conf, '--network-user', 'nobody', '--keyserver-user', 'nosuchuser')
  t.equal(cli.status, EXIT_CONFIG)
  t.equal(cli.stderr, `titus: ${COMMAND_LINE}:7: keyserver-user: unknown user nosuchuser\n`)
  writeFileSync(conf, withCredentials(FIXTURE_KEY, FIXTURE_CERT).replace('network-user nobody\n', ''))
  const missing = checkConfig('--config', conf)
  t.equal(missing.status, EXIT_CONFIG)
  t.match(missing.stderr, /^titus: <configuration>: network-user: must be set/)
})
