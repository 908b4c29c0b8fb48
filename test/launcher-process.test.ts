// The launcher as a process: exit status and signal deaths pass through, signals
// are forwarded, killing it kills the sandbox, environment and limits are as asked.
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync, realpathSync } from 'node:fs'
import { launcherCommand, type SandboxSpec } from '../src/launcher/command.js'
import { buildLauncher, childPids, isAlive, rootOwnedDir, run, sandboxUsers, skipUnlessRoot, waitUntil } from './fixtures/probe-harness.js'

t.test('launcher process behaviour', { skip: skipUnlessRoot }, async t => {
  const dir = rootOwnedDir(t)
  const launcher = buildLauncher(dir)
  const { user, group } = sandboxUsers().conn
  const node = realpathSync(process.execPath)
  const nodeRunning = (script: string, extra: Partial<SandboxSpec> = {}) =>
    launcherCommand({ launcher, profile: 'conn', user, group, program: node, args: ['-e', script], ...extra })

  t.test('exit status passes through', async t => {
    const { file, args } = nodeRunning('process.exit(7)')
    t.equal((await run(file, args)).status, 7)
  })

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    t.test(`death by ${signal} passes through`, async t => {
      const { file, args } = nodeRunning(`process.kill(process.pid, '${signal}')`)
      const result = await run(file, args)
      t.equal(result.status, null)
      t.equal(result.signal, signal)
    })
  }

  t.test('signals are forwarded to the program', async t => {
    const { file, args } = nodeRunning(`
      for (const signal of ['SIGHUP', 'SIGINT', 'SIGUSR2', 'SIGTERM']) process.on(signal, () => {
        console.log('got ' + signal)
        if (signal === 'SIGTERM') process.exit(5)
      })
      console.log('ready')
      setInterval(() => {}, 1000)`)
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => { child.kill('SIGKILL') })
    let stdout = ''
    child.stdout.on('data', chunk => { stdout += chunk })
    const exited = new Promise<number | null>(resolve => child.on('close', resolve))
    t.ok(await waitUntil(() => stdout.includes('ready\n')))
    for (const signal of ['SIGHUP', 'SIGINT', 'SIGUSR2'] as const) {
      child.kill(signal)
      t.ok(await waitUntil(() => stdout.includes(`got ${signal}\n`)), `${signal} arrived`)
    }
    child.kill('SIGTERM')
    t.equal(await exited, 5, 'the program handled SIGTERM and its status came back')
  })

  t.test('killing the launcher kills the whole sandbox', async t => {
    const { file, args } = nodeRunning(`console.log('ready'); setInterval(() => {}, 1000)`)
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => { child.kill('SIGKILL') })
    let stdout = ''
    child.stdout.on('data', chunk => { stdout += chunk })
    t.ok(await waitUntil(() => stdout.includes('ready\n')))
    const [init] = childPids(child.pid!)
    const [program] = childPids(init!)
    t.ok(program, 'found the program')
    const session = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[3]
    t.equal(session(program!), String(init), 'the program is in init\'s new session, away from our terminal')
    child.kill('SIGKILL')
    t.ok(await waitUntil(() => !isAlive(init!) && !isAlive(program!)), 'init and program are gone')
  })

  t.test('the environment is only what --env gives', async t => {
    const { file, args } = nodeRunning('console.log(JSON.stringify(process.env))', { env: { TITUS_ROLE: 'conn', EMPTY: '' } })
    const result = await run(file, args, { env: { ...process.env, TITUS_SECRET: 'must not pass' } })
    t.same(JSON.parse(result.stdout), { TITUS_ROLE: 'conn', EMPTY: '' })
  })

  t.test('resource limits', async t => {
    const script = `console.log(require('fs').readFileSync('/proc/self/limits', 'utf8'))`
    const limits = async (extra: Partial<SandboxSpec>) => {
      const { file, args } = nodeRunning(script, { proc: true, ...extra })
      const result = await run(file, args)
      t.equal(result.status, 0, result.stderr)
      return result.stdout
    }
    const defaults = await limits({})
    t.match(defaults, /^Max open files\s+64\s+64\s/m, 'NOFILE defaults to 64')
    t.match(defaults, /^Max core file size\s+0\s+0\s/m, 'no core dumps')
    t.match(await limits({ nofile: 200 }), /^Max open files\s+200\s+200\s/m, '--nofile sets it')
  })
})
