import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseCommandLine, UsageError } from '../src/cli.js'
import { OPTIONS } from '../src/config/options.js'

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
  const man = readFileSync(new URL('../man/titus.8', import.meta.url), 'utf8')
  for (const o of OPTIONS) t.match(man, `.BI "${o.name} "`, o.name)
})
