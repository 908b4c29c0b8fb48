#!/usr/bin/env node
// What one new connection costs titus, end to end: CPU of the whole process tree (supervisor, keyserver,
// launchers and connection processes, reaped ones included) and wall time, over N sequential connections with
// spare processes already waiting. Run as root to measure the sandboxed path (docs/benchmarks.md).
//
//   node bench/conn-cost.mjs [--runtime node|bun|deno|standalone] [--key ec|rsa] [--n 40] [-- titus options...]
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { values: opt, positionals: extra } = parseArgs({
  options: { runtime: { type: 'string', default: 'node' }, key: { type: 'string', default: 'ec' }, n: { type: 'string', default: '40' } },
  allowPositionals: true,
})
const launch = {
  node: [process.execPath, [join(root, 'dist', 'titus.js')]],
  bun: [join(root, 'node_modules', '.bin', 'bun'), [join(root, 'dist', 'titus.js')]],
  deno: [join(root, 'node_modules', '.bin', 'deno'), ['run', '-A', join(root, 'dist', 'titus.js')]],
  standalone: [join(root, 'dist', 'titus'), []],
}[opt.runtime]
if (!launch) throw new Error(`--runtime ${opt.runtime}: node, bun, deno or standalone`)

const dir = mkdtempSync(join(tmpdir(), 'titus-conn-cost-'))
const keyArgs = opt.key === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']
execFileSync('openssl', ['req', '-x509', ...keyArgs, '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-days', '1'], { stdio: 'ignore' })
const backend = createServer(s => s.pipe(s)).listen(0, '127.0.0.1')
await new Promise(r => backend.once('listening', r))

const asRoot = process.getuid?.() === 0
const titus = spawn(launch[0], [
  ...launch[1],
  '--listen', '127.0.0.1:0', '--backend', '127.0.0.1', '--backend-port', String(backend.address().port),
  '--key', join(dir, 'key.pem'), '--cert', join(dir, 'cert.pem'),
  ...(asRoot ? ['--network-user', 'nobody', '--keyserver-user', 'nobody'] : []),
  ...extra,
], { stdio: ['ignore', 'ignore', 'pipe'] })
let log = ''
titus.stderr.on('data', d => (log += d))

const CLOCK_TICKS = 100 // USER_HZ: /proc/PID/stat counts CPU in these
function treeCpuMs(pid) {
  const procs = new Map()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime, stime, and cutime, cstime: the children it has reaped
      procs.set(Number(entry), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) })
    } catch {
      // gone while we looked
    }
  }
  let ticks = 0
  for (const queue = [pid]; queue.length > 0; ) {
    const p = queue.pop()
    ticks += procs.get(p)?.ticks ?? 0
    for (const [child, info] of procs) if (info.ppid === p) queue.push(child)
  }
  return (ticks * 1000) / CLOCK_TICKS
}

let port
for (let waited = 0; !port; waited += 100) {
  if (waited > 20000 || titus.exitCode !== null) throw new Error(`titus did not start:\n${log}`)
  port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(log)?.[1] ?? 0)
  await sleep(100)
}
const oneConnection = () =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const s = connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => s.end('x'))
    s.once('data', () => {})
    s.once('close', () => resolve(performance.now() - started))
    s.once('error', reject)
  })
for (let i = 0; i < 5; i++) await oneConnection() // warm the supervisor and keyserver
await sleep(1500)
const n = Number(opt.n)
const cpuBefore = treeCpuMs(titus.pid)
let wall = 0
for (let i = 0; i < n; i++) wall += await oneConnection()
await sleep(2000) // the last connection processes exit and new spares start
const cpu = treeCpuMs(titus.pid) - cpuBefore
process.stdout.write(`${opt.runtime}, ${opt.key} key${asRoot ? ', sandboxed' : ', not root: unsandboxed'}${extra.length ? ' ' + extra.join(' ') : ''}: ` +
  `${(cpu / n).toFixed(1)} ms CPU and ${(wall / n).toFixed(1)} ms wall per connection (${n} in a row)\n`)
titus.kill('SIGTERM')
backend.close()
await new Promise(r => titus.once('exit', r))
rmSync(dir, { recursive: true, force: true })
