// The C escape probe under exactly the conn and the keyserver profile: every attempt
// must fail (killing and tracing a live titus's supervisor and keyserver included), and
// from outside the process must look confined.
import t from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launcherCommand } from '../src/launcher/command.js'
import {
  buildLauncher, buildProbe, checkProbeReport, childPids, isAlive, parseProbeOutput, procStatus, rootOwnedDir,
  sandboxUsers, skipUnlessRoot, startSandboxedTitus, titusAttempts, waitUntil,
} from './fixtures/probe-harness.js'

t.test('escape probe', { skip: skipUnlessRoot }, async t => {
  const dir = rootOwnedDir(t)
  const launcher = buildLauncher(dir)
  const probe = buildProbe(dir)
  const users = sandboxUsers()

  // A key file in the system temp dir that the sandbox user could read outside.
  const keyDir = mkdtempSync(join(tmpdir(), 'titus-key-'))
  t.teardown(() => rmSync(keyDir, { recursive: true, force: true }))
  chmodSync(keyDir, 0o755)
  const keyFile = join(keyDir, 'key.pem')
  writeFileSync(keyFile, 'PRIVATE KEY MATERIAL\n', { mode: 0o644 })

  // A listener in our network namespace; the sandbox must never reach it.
  let connections = 0
  const listener = createServer(socket => { connections++; socket.destroy() })
  await new Promise<void>(resolve => listener.listen(0, '127.0.0.1', resolve))
  t.teardown(() => listener.close())
  const port = (listener.address() as AddressInfo).port
  const { titus, keyserver } = await startSandboxedTitus(t)

  for (const profile of ['conn', 'keyserver'] as const) {
    const { user, group, uid, gid } = users[profile]
    t.test(`${profile} profile as ${user}`, async t => {
      t.equal(execFileSync('setpriv', [`--reuid=${user}`, `--regid=${group}`, '--clear-groups', 'cat', keyFile], { encoding: 'utf8' }),
        'PRIVATE KEY MATERIAL\n', `control: outside the sandbox ${user} can read the key file`)
      await new Promise<void>((resolve, reject) => connect(port, '127.0.0.1', resolve).on('error', reject).unref())
      await waitUntil(() => connections === 1)
      connections = 0
      const signalled = spawnSync('setpriv', [`--reuid=${user}`, `--regid=${group}`, '--clear-groups', 'kill', '-0', String(keyserver)])
      t.equal(signalled.status, profile === 'keyserver' ? 0 : 1,
        `control: outside the sandbox ${user} ${profile === 'keyserver' ? 'can' : 'cannot'} signal titus's keyserver (same uid only for the keyserver profile)`)

      const { file, args } = launcherCommand({
        launcher, profile, user, group, program: probe, proc: true, keepFds: [3],
        args: [keyFile, String(process.pid), String(port), String(titus.pid), String(keyserver)],
      })
      // fd 3 is kept (the probe writes to it), fd 4 is not (the probe must not have it).
      const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      let inherited = ''
      child.stdout!.on('data', chunk => { stdout += chunk })
      child.stderr!.on('data', chunk => { stderr += chunk })
      child.stdio[3]!.on('data', (chunk: Buffer) => { inherited += chunk })
      const exited = new Promise<number | null>(resolve => child.on('close', resolve))
      t.teardown(() => { child.kill('SIGKILL') })

      t.ok(await waitUntil(() => stdout.includes('ready\n'), 10000), 'probe reached the end', { stderr })
      const [init] = childPids(child.pid!)
      const [program] = childPids(init!)
      t.ok(init && program, 'found the sandbox init and program from outside')

      const status = procStatus(program!)
      t.equal(status.Seccomp, '2', 'Seccomp 2 (filter)')
      t.equal(status.NoNewPrivs, '1')
      t.equal(status.Uid, `${uid}\t${uid}\t${uid}\t${uid}`, `all uids are ${user}`)
      t.equal(status.Gid, `${gid}\t${gid}\t${gid}\t${gid}`, `all gids are ${group}`)
      t.equal(status.Groups, '', 'no supplementary groups')
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) t.equal(status[set], '0000000000000000', `${set} empty`)
      t.match(status.NSpid, /\t2$/, 'PID 2 in its own PID namespace')
      t.match(procStatus(init!).NSpid, /\t1$/, 'the launcher is PID 1 there')
      for (const ns of ['net', 'pid', 'mnt', 'ipc', 'uts']) {
        t.not(readlinkSync(`/proc/${program}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `own ${ns} namespace`)
      }
      // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ..."
      const mounts = readFileSync(`/proc/${program}/mountinfo`, 'utf8').trim().split('\n').map(line => line.split(' '))
      t.same(mounts.map(fields => fields[4]).sort(), ['/', '/dev/null', '/dev/random', '/dev/urandom', '/proc', probe].sort(),
        'the root holds only the program, three devices and /proc')
      t.same(mounts.filter(fields => !fields[5]!.split(',').includes('ro')).map(fields => fields[4]), [], 'every mount is read-only')
      t.same(mounts.filter(fields => !fields[5]!.split(',').includes('nosuid')).map(fields => fields[4]), [], 'every mount is nosuid')

      child.stdin!.end()
      t.equal(await exited, 0, 'launcher exits with the probe status')
      checkProbeReport(t, parseProbeOutput(stdout), uid, titusAttempts)
      t.ok(isAlive(titus.pid) && isAlive(keyserver), "titus's supervisor and keyserver survived the probe")
      t.equal(inherited, 'hello from the sandbox\n', 'the kept fd carried data out')
      t.equal(connections, 0, 'nothing reached the loopback listener')
      t.equal(stderr, '', 'no diagnostics')
    })
  }
})
