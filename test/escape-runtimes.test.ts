// Node, Bun and Deno start under the launcher (conn profile), talk over an inherited
// IPC channel, and are as confined as the C probe for what a script can try.
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, copyFileSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launcherCommand } from '../src/launcher/command.js'
import { buildLauncher, repoRoot, rootOwnedDir, sandboxUsers, skipUnlessRoot } from './fixtures/probe-harness.js'

interface RuntimeReport {
  runtime: string
  results: Record<string, string>
  info: { pid: number, uid: number, procEntries: string[] | null }
}

// What each runtime needs inside the sandbox, measured: Node nothing; Bun aborts
// without /proc (it reads /proc/self/maps); Deno panics without /proc/self/exe and
// refuses to start without a DENO_DIR (it never writes there for a plain script).
const runtimes: Array<{ name: string, program: string, before: string[], proc: boolean, env: Record<string, string> }> = [
  { name: 'node', program: realpathSync(process.execPath), before: [], proc: false, env: {} },
  { name: 'bun', program: realpathSync(join(repoRoot, 'node_modules/.bin/bun')), before: [], proc: true, env: {} },
  { name: 'deno', program: realpathSync(join(repoRoot, 'node_modules/.bin/deno')), before: ['run', '-A'], proc: true, env: { DENO_DIR: '/nonexistent', NO_COLOR: '1' } },
]

t.test('runtimes under the launcher', { skip: skipUnlessRoot }, async t => {
  const dir = rootOwnedDir(t)
  const launcher = buildLauncher(dir)
  const script = join(dir, 'probe-runtime.mjs')
  copyFileSync(join(repoRoot, 'test/fixtures/probe-runtime.mjs'), script)
  const { user, group, uid } = sandboxUsers().conn
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

  for (const runtime of runtimes) {
    t.test(runtime.name, async t => {
      const { file, args } = launcherCommand({
        launcher, profile: 'conn', user, group, program: runtime.program, files: [script], proc: runtime.proc,
        keepFds: [3], env: { ...runtime.env, NODE_CHANNEL_FD: '3', NODE_CHANNEL_SERIALIZATION_MODE: 'json' },
        args: [...runtime.before, script, keyFile, String(process.pid), String(port)],
      })
      const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
      t.teardown(() => { child.kill('SIGKILL') })
      let stdout = ''
      let stderr = ''
      child.stdout!.on('data', chunk => { stdout += chunk })
      child.stderr!.on('data', chunk => { stderr += chunk })
      const messages: RuntimeReport[] = []
      child.on('message', message => messages.push(message as RuntimeReport))
      const status = await new Promise<number | null>(resolve => child.on('close', resolve))

      t.equal(status, 0, 'the runtime started and exited cleanly', { stderr })
      t.equal(messages.length, 1, 'one report arrived over the inherited IPC channel')
      const report = messages[0]!
      t.same(JSON.parse(stdout), report, 'stdout carries the same report')
      t.equal(report.runtime, runtime.name)
      t.same(Object.entries(report.results).filter(([, result]) => !result.startsWith('blocked')), [], 'every attempt was blocked')
      t.ok(Object.keys(report.results).length >= 9, 'all attempts ran')
      t.equal(report.info.uid, uid, `runs as ${user}`)
      t.equal(report.info.pid, 2, 'PID 2 of its own namespace')
      t.same(report.info.procEntries, runtime.proc ? ['2'] : null, runtime.proc ? '/proc shows only itself' : 'no /proc at all')
      t.equal(connections, 0, 'nothing reached the loopback listener')
    })
  }
})
