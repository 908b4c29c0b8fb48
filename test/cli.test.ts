import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseCommandLine, UsageError } from '../src/cli.js'
import { parseTitusConf, parseTomlConfig, resolveConfig, type TitusConfig } from '../src/config/index.js'
import { OPTIONS } from '../src/config/options.js'

const MAN_PAGE = fileURLToPath(new URL('../man/titus.8', import.meta.url))

t.test('titus 0.4 syntax: every option as --name value, dotted names included', async t => {
  const r = parseCommandLine(['--port', '443', '--tlsv1.2', 'no', '--backend-port=8080', '--tlsv1.1', 'no'])
  t.equal(r.command, 'run')
  t.same(r.entries, [
    { name: 'port', value: '443', position: 2 },
    { name: 'tlsv1.2', value: 'no', position: 4 },
    { name: 'backend-port', value: '8080', position: 5 },
    { name: 'tlsv1.1', value: 'no', position: 7 },
  ])
})

t.test('commands and flags', async t => {
  t.equal(parseCommandLine(['demo', '--listen', '127.0.0.1:9443']).command, 'demo')
  t.equal(parseCommandLine(['--check-config', '--config', 'x.conf']).command, 'check-config')
  t.equal(parseCommandLine(['--version']).command, 'version')
  t.equal(parseCommandLine(['-h']).command, 'help')
})

t.test('usage errors name the offending argument', async t => {
  t.throws(() => parseCommandLine(['--frobnicate', '1']), new UsageError('unknown option --frobnicate'))
  t.throws(() => parseCommandLine(['-x']), new UsageError('unknown option -x'))
  t.throws(() => parseCommandLine(['--key']), /--key needs a value/)
  t.throws(() => parseCommandLine(['serve']), new UsageError('unexpected argument serve'))
})

t.test('the man page documents every option', async t => {
  const man = readFileSync(MAN_PAGE, 'utf8')
  for (const o of OPTIONS) t.match(man, `.BI "${o.name} "`, o.name)
})

// The text of each .EX/.EE example, with the roff escapes the page uses for - and ' undone.
function manExamples(man: string): string[] {
  return [...man.matchAll(/^\.EX\n([\s\S]*?)^\.EE$/gm)].map(m => m[1]!.replaceAll('\\-', '-').replaceAll('\\(aq', "'"))
}

t.test('the man page documents both file formats, with examples that load and mean the same', async t => {
  const man = readFileSync(MAN_PAGE, 'utf8')
  const section = /^\.SH CONFIGURATION FILES\n([\s\S]*?)^\.SH /m.exec(man)?.[1] ?? ''
  for (const heading of ['.SS titus.conf', '.SS TOML', '.SS Virtual hosts']) t.match(section, `\n${heading}\n`, heading)
  t.match(section, /\.B \[\[vhost\]\]/, 'TOML vhost blocks are [[vhost]] tables')
  t.match(section, /\\\(dqtlsv1\.2\\\(dq/, 'dotted names quoted')
  t.notMatch(man, /May be repeated\. May be repeated\./)
  t.notMatch(man, /at most 30 seconds/, 'shutdown takes shutdown-timeout, not a fixed time')

  const examples = manExamples(section)
  t.equal(examples.length, 2, 'one titus.conf and one TOML example')
  const [conf, toml] = examples as [string, string]
  const fromConf = resolveConfig(parseTitusConf(conf, '/etc/titus/titus.conf'))
  const fromToml = resolveConfig(parseTomlConfig(toml, '/etc/titus/titus.toml'))
  // Without what names the file each setting came from.
  const without = (o: object, names: string[]) => Object.fromEntries(Object.entries(o).filter(([k]) => !names.includes(k)))
  const sourceless = (cfg: TitusConfig) => ({ ...without(cfg, ['locations']), vhosts: cfg.vhosts.map(v => without(v, ['source', 'locations'])) })
  t.same(sourceless(fromToml), sourceless(fromConf), 'the TOML example is the titus.conf example')
  t.same(fromConf.vhosts.map(v => v.match), [{ sniNames: ['www.example.com', 'example.com'] }, { sniNames: [null] }], 'sni-name "" is no SNI in both')
  t.same(fromConf.listen, [{ host: '192.0.2.1', port: 443 }, { host: '2001:db8::1', port: 443 }])
})

// CI installs groff only if .ci/run asks for it; where it is missing this check is skipped, not passed.
const groff = spawnSync('groff', ['--version'], { encoding: 'utf8', timeout: 10000 })
t.test('the man page renders without groff warnings', { skip: groff.status === 0 ? false : 'groff is not installed' }, async t => {
  for (const width of [60, 80, 120]) {
    const r = spawnSync('groff', ['-man', '-Tutf8', `-rLL=${width}n`, '-ww', '-z', MAN_PAGE], { encoding: 'utf8', timeout: 20000 })
    t.equal(r.status, 0, `groff exits 0 at ${width} columns`)
    t.equal(r.stderr, '', `no warnings at ${width} columns`)
  }
})
