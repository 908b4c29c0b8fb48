// Every refusal of titus-launcher, with its exact exit status and message, run as
// root and as a setuid-root copy started by an unprivileged user.
import t, { type Test } from 'tap'
import { chmodSync, chownSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launcherCommand } from '../src/launcher/command.js'
import {
  buildLauncher, buildProbe, checkProbeReport, parseProbeOutput, rootOwnedDir, run, runAsNobody, sandboxUsers,
  skipUnlessRoot,
} from './fixtures/probe-harness.js'

const ALLOW_FILE = '/etc/titus/launcher.allow'
const NOBODY = 65534

t.test('launcher refusals', { skip: skipUnlessRoot }, async t => {
  const dir = rootOwnedDir(t)
  const launcher = buildLauncher(dir)
  sandboxUsers()
  const program = '/usr/bin/true'
  const conn = ['--profile', 'conn', '--user', 'titus-net', '--group', 'titus-net']
  // The launcher's arguments for running `program` with its libraries bound.
  const commandFor = (target: string, extra: Partial<Parameters<typeof launcherCommand>[0]> = {}) =>
    launcherCommand({ launcher, profile: 'conn', user: 'titus-net', group: 'titus-net', program: target, args: [], ...extra }).args

  const expectRefusal = async (t: Test, args: readonly string[], status: number, message: RegExp, runner = run) => {
    const result = await runner(launcher, args)
    t.equal(result.status, status, `exit status ${status}`)
    t.match(result.stderr, message)
    t.match(result.stderr, /^titus-launcher: /, 'message names the launcher')
  }

  t.test('control: a well-formed run succeeds', async t => {
    const result = await run(launcher, commandFor(program))
    t.equal(result.status, 0)
    t.equal(result.stderr, '')
  })

  t.test('usage errors exit 2', async t => {
    const cases: Array<[string, string[], RegExp]> = [
      ['no arguments', [], /--profile must be conn or keyserver\nusage: titus-launcher --profile/],
      ['unknown profile', ['--profile', 'web', '--user', 'titus-net', '--group', 'titus-net', '--', program], /--profile must be conn or keyserver/],
      ['missing user', ['--profile', 'conn', '--group', 'titus-net', '--', program], /--user and --group are required/],
      ['missing program', [...conn, '--'], /missing PROGRAM after '--'/],
      ['missing --', [...conn, program], /missing '--' before PROGRAM/],
      ['unknown option', [...conn, '--bind', '/x', '--', program], /unknown option '--bind'/],
      ['option without value', ['--profile'], /option needs a value/],
      ['program not a path', [...conn, '--', 'true'], /PROGRAM must be a path, got 'true'/],
      ['relative bind', [...conn, '--ro-bind', 'lib', '--', program], /--ro-bind needs an absolute path/],
      ['dot-dot bind', [...conn, '--ro-bind', '/usr/../etc', '--', program], /--ro-bind needs an absolute path without '.', '..'/],
      ['double-slash bind', [...conn, '--ro-bind', '/usr//lib', '--', program], /--ro-bind needs an absolute path without '.', '..' or '\/\/': '\/usr\/\/lib'/],
      ['too many --ro-bind', [...conn, ...Array.from({ length: 65 }, (_, i) => ['--ro-bind', `/bind${i}`]).flat(), '--', program], /too many --ro-bind\nusage: /],
      ['too many --env', [...conn, ...Array.from({ length: 65 }, (_, i) => ['--env', `V${i}=1`]).flat(), '--', program], /too many --env\nusage: /],
      ['too many --keep-fd', [...conn, ...Array.from({ length: 33 }, () => ['--keep-fd', '3']).flat(), '--', program], /too many --keep-fd\nusage: /],
      ['bad --nofile', [...conn, '--nofile', '12x', '--', program], /--nofile must be a number from 8 to 1048576, got '12x'/],
      ['keep-fd 2', [...conn, '--keep-fd', '2', '--', program], /--keep-fd must be a number from 3/],
      ['keep-fd not open', [...conn, '--keep-fd', '97', '--', program], /--keep-fd 97 is not an open file descriptor/],
      ['bad --env', [...conn, '--env', 'NOVALUE', '--', program], /--env needs NAME=VALUE, got 'NOVALUE'/],
      ['nested binds', [...commandFor(program).slice(0, -2), '--ro-bind', '/lib', '--', program], /bind paths must not contain each other: \/lib\/x86_64-linux-gnu\/libc.so.6 and \/lib$/m],
      ['binding the program again', [...commandFor(program).slice(0, -2), '--ro-bind', program, '--', program], /must not contain each other: \/usr\/bin\/true and \/usr\/bin\/true/],
      ['bind over /proc', [...conn, '--proc', '--ro-bind', '/proc/self', '--', program], /must not contain each other: \/proc\/self and \/proc/],
    ]
    for (const [name, args, message] of cases) await t.test(name, t => expectRefusal(t, args, 2, message))
  })

  t.test('root and unknown identities exit 3', async t => {
    await t.test('user root', t => expectRefusal(t, ['--profile', 'conn', '--user', 'root', '--group', 'titus-net', '--', program], 3, /refusing user root: uid 0/))
    await t.test('group root', t => expectRefusal(t, ['--profile', 'conn', '--user', 'titus-net', '--group', 'root', '--', program], 3, /refusing group root: gid 0/))
    await t.test('unknown group', t => expectRefusal(t, ['--profile', 'conn', '--user', 'titus-net', '--group', 'titus-nosuchgroup', '--', program], 3, /refusing group titus-nosuchgroup: no such group/))
    await t.test('unknown user', t => expectRefusal(t, ['--profile', 'conn', '--user', 'titus-nosuchuser', '--group', 'titus-net', '--', program], 3, /refusing user titus-nosuchuser: no such user/))
  })

  t.test('inherited directory fds exit 3', async t => {
    const directory = openSync(dir, 'r')
    t.teardown(() => closeSync(directory))
    for (const [name, stdio, keep] of [['kept fd 3', ['ignore', 'pipe', 'pipe', directory], [3]], ['stdin', [directory, 'pipe', 'pipe'], []]] as const) {
      await t.test(name, t => expectRefusal(t, commandFor(program, { keepFds: keep }), 3,
        new RegExp(`refusing fd ${keep[0] ?? 0}: it is a directory, outside the sandbox`), (file, args) => run(file, args, { stdio: [...stdio] })))
    }
  })

  t.test('programs only root controls', async t => {
    const place = (sub: string, mode: number, owner = 0) => {
      const subdir = join(dir, sub)
      mkdirSync(subdir, { mode })
      chmodSync(subdir, mode)
      chownSync(subdir, owner, owner)
      const copy = join(subdir, 'true')
      copyFileSync(program, copy)
      chmodSync(copy, 0o755)
      return copy
    }
    const inWorldWritable = place('world-writable', 0o777)
    await t.test('in a world-writable dir', t => expectRefusal(t, commandFor(inWorldWritable), 3,
      new RegExp(`refusing program ${inWorldWritable}: ${dir}/world-writable is writable by group or others`)))
    const inGroupWritable = place('group-writable', 0o775)
    await t.test('in a group-writable dir', t => expectRefusal(t, commandFor(inGroupWritable), 3, /group-writable is writable by group or others/))
    const inOthersDir = place('others-dir', 0o755, NOBODY)
    await t.test('in a dir not owned by root', t => expectRefusal(t, commandFor(inOthersDir), 3, /others-dir is not owned by root/))
    const notRootOwned = place('not-root-owned', 0o755)
    chownSync(notRootOwned, NOBODY, NOBODY)
    await t.test('not owned by root', t => expectRefusal(t, commandFor(notRootOwned), 3, new RegExp(`${notRootOwned} is not owned by root`)))
    const writable = place('writable', 0o755)
    chmodSync(writable, 0o757)
    await t.test('world-writable itself', t => expectRefusal(t, commandFor(writable), 3, new RegExp(`${writable} is writable by group or others`)))

    // The system temp dir is world-writable (sticky or not, it is refused).
    const tmp = mkdtempSync(join(tmpdir(), 'titus-launcher-'))
    t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
    const inTmp = join(tmp, 'true')
    copyFileSync(program, inTmp)
    await t.test('under the temp dir', t => expectRefusal(t, commandFor(inTmp), 3, /is writable by group or others/))
    // A symlink in a safe place does not launder an unsafe target.
    const link = join(dir, 'link-to-tmp')
    symlinkSync(inTmp, link)
    await t.test('through a symlink', t => expectRefusal(t, [...conn, '--', link], 3, new RegExp(`refusing program ${inTmp}: `)))
    await t.test('not a regular file', t => expectRefusal(t, [...conn, '--', '/dev/null'], 3, /refusing program \/dev\/null: \/dev\/null is not a regular file/))
    await t.test('a directory', t => expectRefusal(t, [...conn, '--', '/usr/bin'], 3, /refusing program \/usr\/bin: \/usr\/bin is not a regular file/))
    await t.test('missing', t => expectRefusal(t, [...conn, '--', '/usr/bin/titus-no-such-program'], 3, /refusing program \/usr\/bin\/titus-no-such-program: No such file/))
  })

  t.test('setuid-root copy run by nobody', async t => {
    const setuidLauncher = join(dir, 'titus-launcher-setuid')
    copyFileSync(launcher, setuidLauncher)
    chmodSync(setuidLauncher, 0o4755)
    const runSetuid = (args: readonly string[], options = {}) => runAsNobody(setuidLauncher, args, options)

    // Keep whatever allow file the machine has and put it back afterwards.
    const titusDirExisted = existsSync('/etc/titus')
    const saved = existsSync(ALLOW_FILE) ? `${ALLOW_FILE}.test-saved-${process.pid}` : undefined
    if (saved) renameSync(ALLOW_FILE, saved)
    mkdirSync('/etc/titus', { recursive: true, mode: 0o755 })
    t.teardown(() => {
      rmSync(ALLOW_FILE, { force: true })
      if (saved) renameSync(saved, ALLOW_FILE)
      else if (!titusDirExisted) rmSync('/etc/titus', { recursive: true, force: true })
    })
    const writeAllow = (content: string, mode = 0o644) => {
      writeFileSync(ALLOW_FILE, content)
      chmodSync(ALLOW_FILE, mode)
      chownSync(ALLOW_FILE, 0, 0)
    }

    await t.test('a plain copy run by nobody refuses (no root)', t => expectRefusal(t, commandFor(program), 3,
      /must run as root or be installed setuid root/, (_, args) => runAsNobody(launcher, args)))
    rmSync(ALLOW_FILE, { force: true })
    await t.test('no allow file', t => expectRefusal(t, commandFor(program), 3,
      /refusing allow file \/etc\/titus\/launcher.allow: cannot stat \/etc\/titus\/launcher.allow: No such file/, (_, args) => runSetuid(args)))
    writeAllow('# only the keyserver\ntitus-keys\n')
    await t.test('user not listed', t => expectRefusal(t, commandFor(program), 3,
      /refusing user titus-net: not listed in \/etc\/titus\/launcher.allow/, (_, args) => runSetuid(args)))
    writeAllow('titus-net\n', 0o666)
    await t.test('allow file world-writable', t => expectRefusal(t, commandFor(program), 3,
      /refusing allow file \/etc\/titus\/launcher.allow: \/etc\/titus\/launcher.allow is writable by group or others/, (_, args) => runSetuid(args)))
    writeAllow('titus-net\n')
    chownSync(ALLOW_FILE, NOBODY, NOBODY)
    await t.test('allow file not owned by root', t => expectRefusal(t, commandFor(program), 3,
      /\/etc\/titus\/launcher.allow is not owned by root/, (_, args) => runSetuid(args)))
    writeAllow('titus-net\n')
    chownSync('/etc/titus', NOBODY, NOBODY)
    await t.test('allow dir not owned by root', t => expectRefusal(t, commandFor(program), 3,
      /refusing allow file \/etc\/titus\/launcher.allow: \/etc\/titus is not owned by root/, (_, args) => runSetuid(args)))
    chownSync('/etc/titus', 0, 0)
    // Mode 0 passes the ownership checks; only a root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (dropped from
    // the bounding set before the setuid exec) then fails to read it.
    writeAllow('titus-net\n', 0o000)
    await t.test('control: root reads an allow file of mode 0', async t => {
      t.equal((await runSetuid(commandFor(program))).status, 0)
    })
    await t.test('allow file unreadable', t => expectRefusal(t, commandFor(program), 3,
      /refusing: cannot read \/etc\/titus\/launcher.allow: Permission denied/,
      (_, args) => run('setpriv', ['--bounding-set=-dac_override,-dac_read_search', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', setuidLauncher, ...args])))

    writeAllow('  # sandbox users\ntitus-keys   # keyserver\n  titus-net\n')
    await t.test('control: a listed user runs', async t => {
      const result = await runSetuid(commandFor(program))
      t.equal(result.status, 0, result.stderr)
    })
    await t.test('only the primary group', t => expectRefusal(t, commandFor(program, { group: 'nogroup' }), 3,
      /refusing group nogroup: when setuid, only the primary group of titus-net is allowed/, (_, args) => runSetuid(args)))
    await t.test('no more open files than the caller may have', t => expectRefusal(t, commandFor(program, { nofile: 4096 }), 3,
      /refusing --nofile 4096: above the caller's hard limit/,
      (_, args) => run('prlimit', ['--nofile=256:256', '--', 'setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', setuidLauncher, ...args])))
    await t.test('still never root', t => expectRefusal(t, ['--profile', 'conn', '--user', 'root', '--group', 'titus-net', '--', program], 3,
      /refusing user root: uid 0/, (_, args) => runSetuid(args)))

    const secret = join(dir, 'secret.pem')
    writeFileSync(secret, 'secret\n', { mode: 0o600 })
    await t.test('missing bind source, as root', t => expectRefusal(t, commandFor(program, { files: [join(dir, 'no-such-file')] }), 3,
      new RegExp(`refusing --ro-bind ${dir}/no-such-file: No such file or directory`)))
    await t.test('control: root may bind a file nobody cannot read', async t => {
      t.equal((await run(launcher, commandFor(program, { files: [secret] }))).status, 0)
    })
    await t.test('binding a file the caller cannot read', t => expectRefusal(t, commandFor(program, { files: [secret] }), 3,
      new RegExp(`refusing --ro-bind ${secret}: not readable by uid ${NOBODY}: Permission denied`), (_, args) => runSetuid(args)))
    const closedDir = join(dir, 'closed')
    mkdirSync(closedDir, { mode: 0o711 })
    await t.test('binding a dir the caller cannot list', t => expectRefusal(t, commandFor(program, { files: [closedDir] }), 3,
      new RegExp(`refusing --ro-bind ${closedDir}: not readable by uid ${NOBODY}`), (_, args) => runSetuid(args)))
    await t.test('binding a device', t => expectRefusal(t, commandFor(program, { files: ['/dev/zero'] }), 3,
      /refusing --ro-bind \/dev\/zero: not a regular file or directory/, (_, args) => runSetuid(args)))

    await t.test('the escape probe stays confined under the setuid launcher', async t => {
      const probe = buildProbe(dir)
      const { uid } = sandboxUsers().conn
      const args = commandFor(probe, { proc: true, keepFds: [3], args: ['/etc/shadow', String(process.pid), '9'] })
      const result = await runSetuid(args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] })
      t.equal(result.status, 0, result.stderr)
      checkProbeReport(t, parseProbeOutput(result.stdout), uid)
      t.notMatch(readFileSync('/etc/shadow', 'utf8'), /^$/, 'control: the shadow file exists outside')
    })
  })
})
