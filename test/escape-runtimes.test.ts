// Node, Bun and Deno start under titus's own launcher command (roleLauncherCommand, as the supervisor spawns its
// children) for the conn and the keyserver profile, talk over the inherited IPC channel, and are as confined as the
// C probe for what a script can try, killing a live titus's supervisor and keyserver included.
import t from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import type { LauncherPlan } from '../src/supervisor/children.js'
import { launchable } from './support/programs.js'
import { buildLauncher, isAlive, repoRoot, rootOwnedDir, sandboxUsers, skipUnlessRoot, startSandboxedTitus } from './fixtures/probe-harness.js'

interface RuntimeReport {
  runtime: string
  argv: string[]
  results: Record<string, string>
  info: { pid: number, uid: number, gid: number, procEntries: string[] | null }
}

// How to run a script on each runtime (as test/support/titus.ts starts titus), and whether titus's sandbox needs for
// that runtime mount /proc: Bun aborts without it (/proc/self/maps), Deno panics (/proc/self/exe); Node needs nothing.
const runtimes = [
  { name: 'node', command: [process.execPath], proc: false },
  { name: 'bun', command: [launchable(join(repoRoot, 'node_modules/.bin/bun'))], proc: true },
  { name: 'deno', command: [launchable(join(repoRoot, 'node_modules/.bin/deno')), 'run', '-A'], proc: true },
]

const attempts = [
  'read-key-file', 'read-etc-shadow', 'create-in-root', 'mkdir-in-root', 'signal-init', 'signal-outside-pid',
  'signal-titus-supervisor', 'signal-titus-keyserver', 'spawn', 'connect-loopback',
]

t.test("runtimes under titus's launcher command", { skip: skipUnlessRoot }, async t => {
  const dir = rootOwnedDir(t)
  const launcher = buildLauncher(dir)
  const script = join(dir, 'probe-runtime.mjs')
  copyFileSync(join(repoRoot, 'test/fixtures/probe-runtime.mjs'), script)
  // titus's command builder, bundled like titus itself so that every runtime can run it.
  const commandScript = join(dir, 'probe-command.mjs')
  await build({ entryPoints: [join(repoRoot, 'test/fixtures/probe-command.ts')], outfile: commandScript, bundle: true, format: 'esm', platform: 'node', logLevel: 'warning' })
  const users = sandboxUsers()
  const plan: LauncherPlan = { kind: 'launcher', launcher, conn: { user: users.conn.user, group: users.conn.group }, keyserver: { user: users.keyserver.user, group: users.keyserver.group } }

  const keyDir = mkdtempSync(join(tmpdir(), 'titus-key-'))
  t.teardown(() => rmSync(keyDir, { recursive: true, force: true }))
  chmodSync(keyDir, 0o755)
  const keyFile = join(keyDir, 'key.pem')
  writeFileSync(keyFile, 'PRIVATE KEY MATERIAL\n', { mode: 0o644 })

  let connections = 0
  const listener = createServer(socket => { connections++; socket.destroy() })
  await new Promise<void>(resolve => listener.listen(0, '127.0.0.1', resolve))
  t.teardown(() => listener.close())
  const port = (listener.address() as AddressInfo).port
  const { titus, keyserver } = await startSandboxedTitus(t)

  for (const runtime of runtimes) {
    for (const role of ['conn', 'keyserver'] as const) {
      const { user, group, uid, gid } = users[role]
      t.test(`${runtime.name}, ${role} profile as ${user}`, async t => {
        const asUser = (...command: string[]) => spawnSync('setpriv', [`--reuid=${user}`, `--regid=${group}`, '--clear-groups', ...command])
        t.equal(asUser('cat', keyFile).status, 0, `control: outside the sandbox ${user} can read the key file`)
        t.equal(asUser('kill', '-0', String(keyserver)).status, role === 'keyserver' ? 0 : 1,
          `control: outside the sandbox ${user} ${role === 'keyserver' ? 'can' : 'cannot'} signal titus's keyserver`)
        const [exe, ...before] = runtime.command
        const printed = execFileSync(exe!, [...before, commandScript, JSON.stringify(plan), role, script], { encoding: 'utf8', timeout: 30000, env: { PATH: process.env.PATH, NO_COLOR: '1' } })
        const { file, args } = JSON.parse(printed) as { file: string, args: string[] }
        t.equal(file, launcher, 'the plan\'s launcher')
        t.same(args.slice(0, 6), ['--profile', role, '--user', user, '--group', group], `the ${role} profile as ${user}`)
        t.equal(args.includes('--proc'), runtime.proc, runtime.proc ? 'with /proc' : 'without /proc')
        t.same(args.slice(args.indexOf('--') + 1, args.indexOf('--') + 2), [realpathSync(exe!)], 'the runtime itself is the program')
        t.same(args.slice(-3), [script, '--internal-role', role], 'the script in titus\'s place, with the role argument')

        const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: {} })
        const killer = setTimeout(() => child.kill('SIGKILL'), 30000)
        t.teardown(() => { clearTimeout(killer); child.kill('SIGKILL') })
        let stdout = ''
        let stderr = ''
        child.stdout!.on('data', chunk => { stdout += chunk })
        child.stderr!.on('data', chunk => { stderr += chunk })
        const messages: RuntimeReport[] = []
        child.on('message', message => messages.push(message as RuntimeReport))
        const closed = new Promise<number | null>(resolve => child.on('close', resolve))
        child.send({ keyFile, outsidePid: process.pid, port, supervisorPid: titus.pid, keyserverPid: keyserver })
        const status = await closed

        t.equal(status, 0, 'the runtime started and exited cleanly', { stderr })
        t.equal(messages.length, 1, 'one report arrived over the inherited IPC channel')
        const report = messages[0]!
        t.same(JSON.parse(stdout), report, 'stdout carries the same report')
        t.equal(report.runtime, runtime.name)
        t.same(report.argv, ['--internal-role', role], 'the role argument arrived')
        t.same(Object.entries(report.results).filter(([, result]) => !result.startsWith('blocked')), [], 'every attempt was blocked')
        t.same(attempts.filter(name => !(name in report.results)), [], 'all attempts ran')
        t.equal(report.info.uid, uid, `runs as ${user}`)
        t.equal(report.info.gid, gid, `in group ${group}`)
        t.equal(report.info.pid, 2, 'PID 2 of its own namespace')
        t.same(report.info.procEntries, runtime.proc ? ['2'] : null, runtime.proc ? '/proc shows only itself' : 'no /proc at all')
        t.equal(connections, 0, 'nothing reached the loopback listener')
        t.ok(isAlive(titus.pid) && isAlive(keyserver), "titus's supervisor and keyserver survived")
      })
    }
  }
})
