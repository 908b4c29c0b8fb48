// The supervisor against clients that stall, a connection process that lies, reloads, failing spares, unprivileged
// runs and JSON logs. A compromised connection process is test/fixtures/compromised-conn.js, which titus runs in
// place of its own when it sits beside a copy of titus.js: real processes and the real IPC, steered by our client.
import t, { type Test } from 'tap'
import { randomBytes, verify, X509Certificate, constants } from 'node:crypto'
import { chmodSync, chownSync, copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { createCertSet } from './support/certs.js'
import { startEchoBackend } from './support/backends.js'
import { run, sleep, until } from './support/process.js'
import { startTitus, TITUS_BUNDLE, type Titus } from './support/titus.js'
import { CONTENT_TYPE, clientHello, record } from './support/wire.js'

const certs = createCertSet(t)
const echo = await startEchoBackend(t)
const ca = readFileSync(certs.caFile)
const p256 = { key: certs.leaves.p256.key, cert: certs.leaves.p256.chain }
const rsa = { key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain }
const isRoot = process.getuid?.() === 0
const DIST = fileURLToPath(new URL('../dist/', import.meta.url))

// --- helpers -----------------------------------------------------------------------------------------------

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')
  } catch {
    return []
  }
}
// The processes titus started in a role (with the launcher, the launcher in front of each).
const rolePids = (titus: Titus, role: 'conn' | 'keyserver') =>
  titus.processes().filter(pid => {
    const argv = cmdline(pid)
    return argv[argv.indexOf('--internal-role') + 1] === role
  })

function freePort(): Promise<number> {
  return new Promise(resolve => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

// A copy of titus.js in a directory of its own (readable by anyone), beside connScript as its connection
// process bundle and the launcher.
function copyTitus(t: Test, connScript = join(DIST, 'titus-conn.js'), connMode = 0o644): string {
  const dir = mkdtempSync(join(tmpdir(), 'titus-copy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  const bundle = join(dir, 'titus.js')
  copyFileSync(TITUS_BUNDLE, bundle)
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  copyFileSync(connScript, join(dir, 'titus-conn.js'))
  chmodSync(join(dir, 'titus-conn.js'), connMode)
  symlinkSync(join(DIST, 'titus-launcher'), join(dir, 'titus-launcher'))
  return bundle
}

interface Exchange {
  subject?: string
  echoed: boolean
  error?: string
}

// One node:tls connection: handshake, 64 bytes out, their echo back, close. Bounded by timeoutMs.
function exchange(port: number, timeoutMs = 8000): Promise<Exchange> {
  return new Promise(resolve => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca, minVersion: 'TLSv1.3' })
    const input = randomBytes(64)
    const result: Exchange = { echoed: false }
    let received = 0
    const timer = setTimeout(() => {
      result.error = 'timeout'
      socket.destroy()
    }, timeoutMs)
    socket.once('secureConnect', () => {
      result.subject = socket.getPeerCertificate().subject?.CN as string | undefined
      socket.write(input)
    })
    socket.on('data', (b: Buffer) => {
      received += b.length
      if (received >= input.length) {
        result.echoed = true
        socket.end()
      }
    })
    socket.on('error', e => (result.error ??= e.message))
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(result)
    })
  })
}

// A TLS connection that stays open; echo() checks it still carries data.
async function hold(t: Test, port: number): Promise<{ socket: TLSSocket; subject?: string; echo(): Promise<boolean> }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca, minVersion: 'TLSv1.3' })
  t.teardown(() => void socket.destroy())
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no handshake within 8 s')), 8000)
    socket.once('secureConnect', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  const echo = () =>
    new Promise<boolean>(resolve => {
      const bytes = randomBytes(16)
      let got = 0
      const timer = setTimeout(() => done(false), 5000)
      const onData = (b: Buffer) => {
        got += b.length
        if (got >= bytes.length) done(true)
      }
      const done = (ok: boolean) => {
        clearTimeout(timer)
        socket.off('data', onData)
        resolve(ok)
      }
      socket.on('data', onData)
      socket.write(bytes)
    })
  return { socket, subject: socket.getPeerCertificate().subject?.CN as string | undefined, echo }
}

// Our end of a connection served by test/fixtures/compromised-conn.js: what we send, it says to the supervisor;
// what the supervisor says to it, we read.
interface Steered {
  conn: number
  // Every message the supervisor sent it so far.
  heard: Record<string, unknown>[]
  say(...messages: Record<string, unknown>[]): void
  // The next message of type `type` the supervisor sends (rejects after timeoutMs or on close).
  hear(type: string, timeoutMs?: number): Promise<Record<string, unknown>>
  // Resolves true once the connection is closed, false if it is still open after timeoutMs.
  closed(timeoutMs?: number): Promise<boolean>
}

async function steer(t: Test, port: number): Promise<Steered> {
  const socket: Socket = netConnect({ host: '127.0.0.1', port })
  t.teardown(() => void socket.destroy())
  socket.on('error', () => {})
  const heard: Record<string, unknown>[] = []
  let isClosed = false
  const changed = new Set<() => void>()
  let pending = ''
  socket.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString('utf8')).split('\n')
    pending = lines.pop()!
    for (const line of lines) heard.push(JSON.parse(line) as Record<string, unknown>)
    for (const f of changed) f()
  })
  socket.on('close', () => {
    isClosed = true
    for (const f of changed) f()
  })
  const wait = <T>(timeoutMs: number, check: () => T | Error | undefined, onTimeout: () => T | Error): Promise<T> =>
    new Promise((resolve, reject) => {
      const settle = (v: T | Error) => {
        clearTimeout(timer)
        changed.delete(probe)
        if (v instanceof Error) reject(v)
        else resolve(v)
      }
      const probe = () => {
        const v = check()
        if (v !== undefined) settle(v)
      }
      const timer = setTimeout(() => settle(onTimeout()), timeoutMs)
      changed.add(probe)
      probe()
    })
  let seen = 0
  const hear = (type: string, timeoutMs = 5000) =>
    wait<Record<string, unknown>>(
      timeoutMs,
      () => {
        const i = heard.findIndex((m, index) => index >= seen && m.t === type)
        if (i >= 0) {
          seen = i + 1
          return heard[i]
        }
        if (isClosed) return new Error(`closed before the supervisor sent ${type}: heard ${JSON.stringify(heard)}`)
        return undefined
      },
      () => new Error(`no ${type} from the supervisor within ${timeoutMs} ms: heard ${JSON.stringify(heard)}`),
    )
  const client = await hear('client', 10000)
  return {
    conn: client.conn as number,
    heard,
    say: (...messages) => socket.write(messages.map(m => JSON.stringify(m) + '\n').join('')),
    hear,
    closed: (timeoutMs = 5000) => wait(timeoutMs, () => (isClosed ? true : undefined), () => false),
  }
}

// What the keyserver signs for TLS 1.3: the CertificateVerify input (RFC 8446 §4.4.3) with a SHA-256 transcript hash.
const certificateVerifyInput = () => Buffer.concat([Buffer.alloc(64, 0x20), Buffer.from('TLS 1.3, server CertificateVerify'), Buffer.of(0), randomBytes(32)])
const ECDSA_SECP256R1_SHA256 = 0x0403
const RSA_PSS_RSAE_SHA256 = 0x0804
const signRequest = (conn: number, id: number, scheme: number, message: Buffer) => ({ t: 'sign', conn, id, scheme, message: message.toString('base64') })
const leafKey = (files: { cert: string }) => new X509Certificate(readFileSync(files.cert)).publicKey
const verifies = (files: { cert: string }, message: Buffer, signature: unknown, pss = false) =>
  verify('sha256', message, pss ? { key: leafKey(files), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : leafKey(files),
    Buffer.from(String(signature), 'base64'))

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const outcomeLine = (conn: number, outcome: string) => new RegExp(`^titus: connection id=${conn} .*outcome="${escapeRe(outcome)}`)

// --- a compromised connection process ----------------------------------------------------------------------

t.test('a compromised connection process', async t => {
  const bundle = copyTitus(t, fileURLToPath(new URL('fixtures/compromised-conn.js', import.meta.url)))
  // Vhost 1 serves only the second listener; vhost 2 everything else.
  const otherPort = await freePort()
  const conf = join(t.testdir({}), 'titus.conf')
  writeFileSync(conf, `vhost\n\tlocal-port ${otherPort}\nvhost\n`)
  const titus = await startTitus(t, { bundle, backendPort: echo.port, ...p256, args: ['--config', conf, '--listen', `127.0.0.1:${otherPort}`, '--min-spare-children', '2'] })
  await titus.waitForLog(new RegExp(`listening on 127\\.0\\.0\\.1:${otherPort}`))

  t.test('naming a vhost restricted to another local port: dropped before it can sign', async t => {
    const c = await steer(t, titus.port)
    c.say({ t: 'vhost', conn: c.conn, vhost: 1 }, signRequest(c.conn, 1, ECDSA_SECP256R1_SHA256, certificateVerifyInput()))
    t.ok(await c.closed(), 'the connection is closed')
    await t.resolves(titus.waitForLog(outcomeLine(c.conn, 'vhost 1 does not serve this connection')), 'and logged with the reason')
    t.notOk(c.heard.some(m => m.t === 'signed' || m.t === 'sign-failed'), 'the signature request after it was never answered')
  })

  t.test('the vhost of its listener is allowed, once, and signs with that key', async t => {
    const c = await steer(t, otherPort)
    const message = certificateVerifyInput()
    c.say({ t: 'vhost', conn: c.conn, vhost: 1 }, signRequest(c.conn, 7, ECDSA_SECP256R1_SHA256, message))
    const signed = await c.hear('signed')
    t.equal(signed.id, 7, 'the answer names the request')
    t.ok(verifies(p256, message, signed.signature), 'a valid signature by the vhost key')
    c.say({ t: 'vhost', conn: c.conn, vhost: 1 })
    t.ok(await c.closed(), 'choosing a vhost a second time closes the connection')
    await t.resolves(titus.waitForLog(outcomeLine(c.conn, 'vhost chosen twice')), 'logged')

    const d = await steer(t, titus.port)
    d.say({ t: 'vhost', conn: d.conn, vhost: 2 }, signRequest(d.conn, 1, ECDSA_SECP256R1_SHA256, certificateVerifyInput()))
    t.ok(await d.hear('signed'), 'on the first listener, vhost 2 is the one allowed')
  })

  t.test('a signature the keyserver refuses drops the connection', async t => {
    const c = await steer(t, titus.port)
    c.say({ t: 'vhost', conn: c.conn, vhost: 2 }, signRequest(c.conn, 1, ECDSA_SECP256R1_SHA256, Buffer.from('sign this for me, please')))
    t.ok(await c.closed(), 'the connection is closed')
    await t.resolves(titus.waitForLog(new RegExp(`^titus: sign-refused conn=${c.conn} `)), 'the refusal is logged')
    await t.resolves(titus.waitForLog(outcomeLine(c.conn, 'signature refused: ')), 'and is the outcome of the connection')
    t.notOk(c.heard.some(m => m.t === 'sign-failed'), 'the process was dropped, not told to try again')
  })

  t.test('the signature budget is kept by the supervisor too: a restarted keyserver does not renew it', async t => {
    const c = await steer(t, titus.port)
    c.say({ t: 'vhost', conn: c.conn, vhost: 2 }, signRequest(c.conn, 1, ECDSA_SECP256R1_SHA256, certificateVerifyInput()))
    await c.hear('signed')

    const [keyserver] = rolePids(titus, 'keyserver')
    t.ok(keyserver, 'the keyserver process')
    process.kill(keyserver!, 'SIGKILL')
    await titus.waitForLog(/^titus: keyserver-exit /)
    // A fresh connection signs once the new keyserver has the keys.
    await until('a new keyserver signs', 10000, () => rolePids(titus, 'keyserver').some(p => p !== keyserver))
    let fresh: Record<string, unknown> | undefined
    for (let tries = 0; !fresh && tries < 20; tries++) {
      const d = await steer(t, titus.port)
      d.say({ t: 'vhost', conn: d.conn, vhost: 2 }, signRequest(d.conn, 1, ECDSA_SECP256R1_SHA256, certificateVerifyInput()))
      fresh = (await Promise.race([d.hear('signed'), d.hear('sign-failed').then(() => undefined)]).catch(() => undefined))
      if (!fresh) await sleep(250)
    }
    t.ok(fresh, 'the new keyserver signs for a new connection')

    c.say(signRequest(c.conn, 2, ECDSA_SECP256R1_SHA256, certificateVerifyInput()))
    t.ok(await c.closed(), 'a second signature for the old connection closes it')
    await t.resolves(titus.waitForLog(outcomeLine(c.conn, 'signature budget exceeded')), 'logged')
    t.equal(c.heard.filter(m => m.t === 'signed').length, 1, 'one signature, not two')
    t.equal(titus.log.filter(l => /keyserver-exit/.test(l)).length, 1, 'the keyserver died only when we killed it')
  })

  t.test('messages the protocol does not have drop the process', async t => {
    const c = await steer(t, titus.port)
    c.say({ t: 'sign', conn: c.conn, id: 1, scheme: ECDSA_SECP256R1_SHA256, message: 'not base64!' })
    t.ok(await c.closed(), 'the connection is closed')
    await t.resolves(titus.waitForLog(outcomeLine(c.conn, 'malformed message from connection process')), 'logged')
  })
})

t.test('strict: a handshake in flight over a reload is signed with the key of its own generation', async t => {
  const bundle = copyTitus(t, fileURLToPath(new URL('fixtures/compromised-conn.js', import.meta.url)))
  const conf = join(t.testdir({}), 'titus.conf')
  const vhost = (files: { key: string; cert: string }) => `vhost\n\tkey ${files.key}\n\tcert ${files.cert}\n`
  writeFileSync(conf, vhost(p256))
  const titus = await startTitus(t, { bundle, backendPort: echo.port, ...p256, args: ['--config', conf] })

  const before = await steer(t, titus.port)
  before.say({ t: 'vhost', conn: before.conn, vhost: 1 })
  writeFileSync(conf, vhost(rsa))
  process.kill(titus.pid, 'SIGHUP')
  await titus.waitForLog(/^titus: reloaded/)

  const message = certificateVerifyInput()
  before.say(signRequest(before.conn, 1, ECDSA_SECP256R1_SHA256, message))
  const signed = await before.hear('signed')
  t.ok(verifies(p256, message, signed.signature), 'the connection from before the reload is signed with the P-256 key of its certificate')

  const after = await steer(t, titus.port)
  const rsaMessage = certificateVerifyInput()
  after.say({ t: 'vhost', conn: after.conn, vhost: 1 }, signRequest(after.conn, 1, RSA_PSS_RSAE_SHA256, rsaMessage))
  t.ok(verifies(rsa, rsaMessage, (await after.hear('signed')).signature, true), 'a connection after it with the new RSA key')
})

// --- reload ------------------------------------------------------------------------------------------------

t.test('pooled: after SIGHUP new clients go to new processes with the new certificate; the old process ends with its last connection', async t => {
  const conf = join(t.testdir({}), 'titus.conf')
  const vhost = (files: { key: string; cert: string }) => `vhost\n\tkey ${files.key}\n\tcert ${files.cert}\n`
  writeFileSync(conf, vhost(p256))
  const titus = await startTitus(t, { backendPort: echo.port, ...p256, args: ['--config', conf, '--isolation', 'pooled', '--min-spare-children', '1'] })
  const held = await hold(t, titus.port)
  t.equal(held.subject, 'localhost p256')
  const old = await until('one pooled process', 5000, () => {
    const pids = rolePids(titus, 'conn')
    return pids.length === 1 && pids
  })

  writeFileSync(conf, vhost(rsa))
  process.kill(titus.pid, 'SIGHUP')
  await titus.waitForLog(/^titus: reloaded/)
  for (let i = 0; i < 4; i++) {
    const e = await exchange(titus.port)
    t.same(e, { subject: 'localhost rsa', echoed: true }, `new connection ${i + 1} after the reload: the new certificate, a valid handshake`)
  }
  t.ok(await held.echo(), 'the connection from before still works')
  t.ok(rolePids(titus, 'conn').includes(old[0]!), 'in its old process')

  held.socket.end()
  await t.resolves(until('the old process is gone', 5000, () => !rolePids(titus, 'conn').includes(old[0]!)), 'which exits after its last connection')
  t.same(await exchange(titus.port), { subject: 'localhost rsa', echoed: true }, 'and titus keeps serving')
})

t.test('reloads back to back, and a connection ending during a reload: new connections still get signed', async t => {
  const conf = join(t.testdir({}), 'titus.conf')
  const vhost = (files: { key: string; cert: string }) => `vhost\n\tkey ${files.key}\n\tcert ${files.cert}\n`
  writeFileSync(conf, vhost(p256))
  const titus = await startTitus(t, { backendPort: echo.port, ...p256, args: ['--config', conf] })
  const held = await hold(t, titus.port)
  writeFileSync(conf, vhost(rsa))
  // SIGHUPs a few ms apart (signals sent at once merge into one), and the held connection ends while the
  // keys are on their way to the keyserver.
  for (let i = 0; i < 3; i++) {
    process.kill(titus.pid, 'SIGHUP')
    if (i === 0) held.socket.end()
    await sleep(3)
  }
  await until('two reloads or more', 10000, () => titus.log.filter(l => /^titus: reloaded/.test(l)).length >= 2)
  await sleep(500)
  for (let i = 0; i < 3; i++) {
    t.same(await exchange(titus.port), { subject: 'localhost rsa', echoed: true }, `connection ${i + 1} after the reloads: signed with the new key`)
  }
  t.notOk(titus.log.some(l => /sign-refused|child-dropped/.test(l)), 'no signature refused, no process dropped', { log: titus.log })
})

t.test('reload applies what it can and names what needs a restart; the isolation mode stays', async t => {
  const conf = join(t.testdir({}), 'titus.conf')
  const pidFile = join(t.testdir({}), 'titus.pid')
  writeFileSync(conf, 'min-spare-children 1\n')
  const titus = await startTitus(t, { backendPort: echo.port, ...p256, args: ['--config', conf] })
  writeFileSync(conf, `min-spare-children 1\nisolation pooled\npid-file ${pidFile}\nlog-format json\nmax-handshake-time 1\n`)
  process.kill(titus.pid, 'SIGHUP')
  await titus.waitForLog(/"event":"reloaded"/)
  const json = titus.log.filter(l => l.startsWith('{')).map(l => JSON.parse(l) as { event: string; option?: string })
  t.same(json.filter(l => l.event.startsWith('reload')).map(l => [l.event, l.option]), [
    ['reload-needs-restart', 'pid-file'],
    ['reload-needs-restart', 'isolation'],
    ['reloaded', undefined],
  ], 'one line per option kept, in the new log format')

  const a = await hold(t, titus.port)
  const b = await hold(t, titus.port)
  await t.resolves(until('two connection processes and a spare', 5000, () => rolePids(titus, 'conn').length === 3),
    'still strict: each connection has a process of its own')
  t.ok((await a.echo()) && (await b.echo()), 'both work')

  const started = Date.now()
  const silent = await new Promise<number>(resolve => {
    const s = netConnect({ host: '127.0.0.1', port: titus.port })
    s.on('error', () => {})
    s.on('close', () => resolve(Date.now() - started))
    setTimeout(() => s.destroy(), 8000)
  })
  t.ok(silent < 4000, `the new max-handshake-time applies: a silent client closed after ${silent} ms`)
})

// --- behaviour seen from outside ---------------------------------------------------------------------------

t.test('max-handshake-time: clients that send nothing or half a ClientHello are closed in time', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, ...p256, args: ['--max-handshake-time', '1'] })
  const hello = record(CONTENT_TYPE.handshake, clientHello(), 0x0301)
  const stall = (payload: Buffer) =>
    new Promise<{ port: number; ms: number; received: number }>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port: titus.port })
      const started = Date.now()
      let received = 0
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error('not closed within 8 s'))
      }, 8000)
      let local = 0
      socket.on('error', () => {})
      socket.on('data', (b: Buffer) => (received += b.length))
      socket.on('connect', () => {
        local = socket.localPort!
        if (payload.length > 0) socket.write(payload)
      })
      socket.on('close', () => {
        clearTimeout(timer)
        resolve({ port: local, ms: Date.now() - started, received })
      })
    })
  const [silent, half] = await Promise.all([stall(Buffer.alloc(0)), stall(hello.subarray(0, hello.length >> 1))])
  for (const [name, r] of [['silent', silent], ['half ClientHello', half]] as const) {
    t.ok(r.ms >= 900 && r.ms < 4000, `${name}: closed after ${r.ms} ms (limit 1 s)`)
    t.equal(r.received, 0, `${name}: nothing was sent back`)
    await t.resolves(titus.waitForLog(new RegExp(`^titus: connection id=\\d+ client=127\\.0\\.0\\.1:${r.port} .*outcome="handshake timeout"$`)),
      `${name}: logged as a handshake timeout`)
  }
})

t.test('--log-format json: every line is a JSON object; a connection line has the right values', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, ...p256, args: ['--log-format', 'json'] })
  const input = randomBytes(3000)
  const socket = tlsConnect({ host: '127.0.0.1', port: titus.port, servername: 'localhost', ca, minVersion: 'TLSv1.3' })
  socket.on('error', () => {})
  const started = Date.now()
  const seen = await new Promise<{ version: string | null; suite: string; port: number; received: number }>((resolve, reject) => {
    let received = 0
    let negotiated = { version: null as string | null, suite: '', port: 0 }
    const timer = setTimeout(() => reject(new Error('no echo within 8 s')), 8000)
    socket.once('secureConnect', () => {
      negotiated = { version: socket.getProtocol(), suite: socket.getCipher().standardName, port: socket.localPort! }
      socket.write(input)
    })
    socket.on('data', (b: Buffer) => {
      received += b.length
      if (received >= input.length) socket.end()
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ ...negotiated, received })
    })
  })
  const took = Date.now() - started
  const line = await titus.waitForLog(/"event":"connection"/)
  await titus.stop()
  for (const l of titus.log.filter(l => l !== '')) {
    let parsed: unknown
    t.doesNotThrow(() => (parsed = JSON.parse(l)), `a JSON line: ${l}`)
    t.ok(typeof parsed === 'object' && parsed !== null && typeof (parsed as { event?: unknown }).event === 'string', 'an object with an event')
  }
  const c = JSON.parse(line) as Record<string, unknown>
  t.match(c, {
    id: Number,
    client: `127.0.0.1:${seen.port}`,
    vhost: 0,
    version: seen.version,
    suite: seen.suite,
    bytes_in: input.length,
    bytes_out: seen.received,
    outcome: 'closed',
  })
  t.equal(seen.received, input.length, 'the client got its echo')
  t.ok(typeof c.ms === 'number' && c.ms >= 0 && c.ms <= took + 100, `duration ${c.ms} ms (the client saw ${took} ms)`)
})

t.test('spares that keep failing to start: titus gives up with a clear error and status 1', { skip: !isRoot && 'needs root (a network user that cannot read the connection bundle)' }, async t => {
  // Root-owned and private: the network user (nobody) cannot read it, the keyserver (titus.js) still starts.
  const bundle = copyTitus(t, join(DIST, 'titus-conn.js'), 0o600)
  const titus = await startTitus(t, { bundle, backendPort: echo.port, ...p256 })
  const exit = await Promise.race([titus.exited, sleep(30000).then(() => undefined)])
  t.same(exit, { code: 1, signal: null }, 'titus exits with status 1')
  t.equal(titus.log.filter(l => /^titus: spare-failed /.test(l)).length, 5, 'after five failed starts, no more')
  t.ok(titus.log.includes('titus: fatal reason="connection processes keep failing to start; giving up"'), 'and says why')
  t.same((await titus.stop()).leftovers, [], 'leaving no process behind')
})

t.test('isolation none as root is refused', { skip: !isRoot && 'needs root' }, async t => {
  const r = await run(t, process.execPath, [TITUS_BUNDLE, '--port', '0', '--backend', '127.0.0.1', '--backend-port', String(echo.port), '--key', p256.key, '--cert', p256.cert, '--isolation', 'none'], { timeoutMs: 10000 })
  t.equal(r.code, 5, 'the configuration error status')
  t.match(r.stderr, /^titus: .*isolation none is for development and refuses to run as root\n$/, 'and why')
})

t.test('as an unprivileged user: a loud NOT SANDBOXED warning, and titus still serves', async t => {
  const bundle = copyTitus(t)
  const dir = join(bundle, '..')
  const files = { key: join(dir, 'p256.key'), cert: join(dir, 'p256.crt') }
  copyFileSync(p256.key, files.key)
  copyFileSync(p256.cert, files.cert)
  if (isRoot) chownSync(files.key, 65534, 65534)
  chmodSync(files.key, 0o600)
  chmodSync(files.cert, 0o644)
  const wrapper = isRoot ? ['setpriv', '--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups'] : []
  const titus = await startTitus(t, { bundle, wrapper, backendPort: echo.port, ...files })
  t.ok(titus.log.some(l => /^\*\*\* titus WARNING: NOT SANDBOXED: not running as root .* Use this for development only\. \*\*\*$/.test(l)), 'the warning')
  t.same(await exchange(titus.port), { subject: 'localhost p256', echoed: true }, 'a connection is served')
  const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${titus.pid}/status`, 'utf8'))![1])
  t.not(uid, 0, `titus runs as uid ${uid}`)
})
