// chroot keeps its titus 0.4 meaning, a directory owned by root, and is checked when the configuration loads; the
// launcher gives each sandbox its own empty root instead, so an accepted chroot changes nothing else.
import t from 'tap'
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { COMMAND_LINE, ConfigError, loadConfig } from '../src/config/index.js'

const VALID = 'key k\ncert c\nbackend 127.0.0.1\nbackend-port 80\n'

t.test('chroot', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'titus-chroot-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'titus.conf')
  const load = (chroot: string) => {
    writeFileSync(file, `${VALID}chroot ${chroot}\n`)
    return loadConfig([{ name: 'config', value: file, file: COMMAND_LINE, line: 1 }])
  }
  const refused = (chroot: string, problem: string) => {
    t.throws(() => load(chroot), new ConfigError(file, 5, 'chroot', problem), `${chroot}: ${problem}`)
  }

  refused(join(dir, 'missing'), `${join(dir, 'missing')} does not exist`)
  refused('missing', `${join(dir, 'missing')} does not exist`)
  refused(file, `${file} is not a directory`)
  // Created by root the directory is root's: hand it to nobody. Created by anyone else it is theirs already.
  const notRoots = join(dir, 'not-roots')
  mkdirSync(notRoots)
  if (process.getuid?.() === 0) chownSync(notRoots, 65534, 65534)
  refused(notRoots, `${notRoots} is not owned by root`)

  t.equal(load('/').chroot, '/', 'an existing root-owned directory is accepted')
  t.equal(loadConfig([{ name: 'chroot', value: '/usr', file: COMMAND_LINE, line: 1 }, { name: 'key', value: 'k', file: COMMAND_LINE, line: 2 },
    { name: 'cert', value: 'c', file: COMMAND_LINE, line: 3 }, { name: 'backend', value: 'b', file: COMMAND_LINE, line: 4 },
    { name: 'backend-port', value: '80', file: COMMAND_LINE, line: 5 }]).chroot, '/usr', 'also on the command line')
  t.throws(() => loadConfig([{ name: 'chroot', value: '/titus-no-such-dir', file: COMMAND_LINE, line: 3 }]),
    new ConfigError(COMMAND_LINE, 3, 'chroot', '/titus-no-such-dir does not exist'), 'a command-line error names its position')
})
