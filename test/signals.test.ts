// SIGTERM/SIGINT: stop accepting, let active connections finish within shutdown-timeout, exit 0.
// daemon yes + pid-file: the foreground command returns once the daemon serves; the pid file names it.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect as netConnect, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { createCertSet } from './support/certs.js'
import { startEchoBackend } from './support/backends.js'
import { nodeClient } from './support/clients.js'
import { sleep } from './support/process.js'
import { startTitus, TITUS_BUNDLE } from './support/titus.js'

const certs = createCertSet(t)
const leaf = certs.leaves.p256
const echo = await startEchoBackend(t)

async function openEcho(port: number): Promise<{ socket: TLSSocket; roundTrip(text: string): Promise<string> }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(certs.caFile), minVersion: 'TLSv1.3' })
  socket.on('error', () => {})
  await once(socket, 'secureConnect')
  return {
    socket,
    async roundTrip(text) {
      socket.write(text)
      const [data] = (await Promise.race([once(socket, 'data'), sleep(5000).then(() => [Buffer.from('<timeout>')])])) as [Buffer]
      return data.toString()
    },
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = netConnect({ host: '127.0.0.1', port })
    s.once('connect', () => (s.destroy(), resolve(false)))
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'))
  })
}

t.test('SIGTERM lets an active connection finish, refuses new ones, exits 0', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, key: leaf.key, cert: leaf.chain, args: ['--shutdown-timeout', '20'] })
  const conn = await openEcho(titus.port)
  t.equal(await conn.roundTrip('before'), 'before')
  const started = Date.now()
  process.kill(titus.pid, 'SIGTERM')
  await titus.waitForLog(/shutdown .*signal=SIGTERM/)
  t.ok(await refused(titus.port), 'the listener is closed')
  t.equal(await conn.roundTrip('during shutdown'), 'during shutdown', 'the active connection still works')
  conn.socket.end()
  const { code } = await titus.exited
  t.equal(code, 0, 'exit status 0')
  const { leftovers } = await titus.stop()
  t.same(leftovers, [], 'no process left behind')
  t.ok(Date.now() - started < 10_000, 'titus exited once the connection closed, not at the timeout')
})

t.test('shutdown-timeout cuts connections that do not finish', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, key: leaf.key, cert: leaf.chain, args: ['--shutdown-timeout', '1'] })
  const conn = await openEcho(titus.port)
  t.equal(await conn.roundTrip('hello'), 'hello')
  const closed = once(conn.socket, 'close')
  const started = Date.now()
  process.kill(titus.pid, 'SIGINT')
  await closed
  const waited = Date.now() - started
  t.ok(waited >= 900 && waited < 8000, `the held connection was cut after the timeout (${waited} ms)`)
  const { code } = await titus.exited
  t.equal(code, 0, 'exit status 0')
})

t.test('daemon yes with pid-file', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'titus-daemon-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pidFile = join(dir, 'titus.pid')
  const probe = createServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise(resolve => probe.close(resolve))
  const users = process.getuid?.() === 0 ? ['--network-user', 'nobody', '--keyserver-user', 'nobody'] : []
  const fg = spawnSync(process.execPath, [
    TITUS_BUNDLE, '--daemon', 'yes', '--pid-file', pidFile, '--listen', `127.0.0.1:${port}`,
    '--backend', '127.0.0.1', '--backend-port', String(echo.port), '--key', leaf.key, '--cert', leaf.chain, ...users,
  ], { encoding: 'utf8', timeout: 30_000 })
  t.equal(fg.status, 0, `the foreground command exits 0 once the daemon is up: ${fg.stderr}`)
  const pid = Number(readFileSync(pidFile, 'utf8'))
  t.ok(pid > 0 && pid !== fg.pid, 'the pid file names the daemon')
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  })
  const r = await nodeClient(t, { port, caFile: certs.caFile })
  t.ok(r.ok, 'the daemon serves', { detail: r.detail })
  process.kill(pid, 'SIGTERM')
  for (let i = 0; i < 100 && existsSync(pidFile); i++) await sleep(50)
  t.notOk(existsSync(pidFile), 'the pid file is removed on exit')
})
