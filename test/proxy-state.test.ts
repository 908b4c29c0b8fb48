// titus is transparent to the backend: each side's half-close, reset or refusal is mirrored to the other side,
// and the listen forms (IPv4, IPv6, titus's dual-stack `port`) all serve.
import t from 'tap'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { createCertSet } from './support/certs.js'
import { startEchoBackend, startManualBackend } from './support/backends.js'
import { nodeClient } from './support/clients.js'
import { startTitus } from './support/titus.js'
import { sleep } from './support/process.js'

const certs = createCertSet(t)
const leaf = certs.leaves.p256

interface Client {
  tcp: Socket
  tls: TLSSocket
  received: () => string
  // Resolves with true when the server's close_notify/FIN arrived, false if the socket closed without one.
  sawEnd: Promise<boolean>
  // Resolves with the error code the socket closed with, if any.
  closed: Promise<string | undefined>
}

async function connectClient(port: number, host = '127.0.0.1'): Promise<Client> {
  const raw = netConnect({ host, port, allowHalfOpen: true })
  const tls = tlsConnect({ socket: raw, servername: 'localhost', ca: readFileSync(certs.caFile), minVersion: 'TLSv1.3' })
  tls.allowHalfOpen = true
  let text = ''
  tls.on('data', (b: Buffer) => (text += b.toString()))
  const sawEnd = new Promise<boolean>(resolve => {
    tls.once('end', () => resolve(true))
    tls.once('close', () => resolve(false))
  })
  const closed = new Promise<string | undefined>(resolve => {
    let code: string | undefined
    tls.once('error', (e: NodeJS.ErrnoException) => (code = e.code ?? e.message))
    tls.once('close', () => resolve(code))
  })
  await once(tls, 'secureConnect')
  return { tcp: raw, tls, received: () => text, sawEnd, closed }
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
  }
}

t.test('state mirroring', async t => {
  const backend = await startManualBackend(t)
  const titus = await startTitus(t, { backendPort: backend.port, key: leaf.key, cert: leaf.chain })

  t.test('client half-close: the backend sees FIN and can still answer', async t => {
    const client = await connectClient(titus.port)
    client.tls.write('question')
    const b = await backend.nextConnection()
    let got = ''
    b.socket.on('data', (d: Buffer) => (got += d.toString()))
    client.tls.end() // close_notify + FIN
    t.equal(await b.sawEnd, true, 'backend got FIN after the data')
    t.equal(got, 'question')
    b.socket.end('answer after your FIN')
    t.equal(await client.sawEnd, true, 'client got the end after the answer')
    t.equal(client.received(), 'answer after your FIN', 'the answer crossed the half-closed connection')
    t.equal(await client.closed, undefined, 'client closed cleanly')
  })

  t.test('client FIN without close_notify: the backend sees FIN and can still answer', async t => {
    const client = await connectClient(titus.port)
    client.tls.write('question')
    const b = await backend.nextConnection()
    let got = ''
    b.socket.on('data', (d: Buffer) => (got += d.toString()))
    await until(() => got === 'question', 'the data at the backend')
    client.tcp.end() // FIN below the TLS layer: no close_notify
    t.equal(await b.sawEnd, true, 'backend got FIN')
    b.socket.end('answer after your FIN')
    await until(() => client.received() === 'answer after your FIN', 'the answer at the client')
    t.pass('the answer crossed the half-closed connection')
  })

  t.test('backend half-close: the client sees close_notify and can still send', async t => {
    const client = await connectClient(titus.port)
    client.tls.write('x')
    const b = await backend.nextConnection()
    let got = ''
    b.socket.on('data', (d: Buffer) => (got += d.toString()))
    await until(() => got === 'x', 'first byte at the backend')
    b.socket.end('bye')
    t.equal(await client.sawEnd, true, 'client got close_notify')
    t.equal(client.received(), 'bye')
    client.tls.end('still talking')
    t.equal(await b.sawEnd, true, 'backend got FIN after the late data')
    t.equal(got, 'xstill talking', 'data sent after the close_notify reached the backend')
  })

  t.test('client reset becomes a backend reset', async t => {
    const client = await connectClient(titus.port)
    client.tls.write('x')
    const b = await backend.nextConnection()
    await once(b.socket, 'data')
    client.tcp.resetAndDestroy()
    t.equal(await b.closed, 'ECONNRESET', 'backend saw a reset')
  })

  t.test('backend reset becomes a client reset', async t => {
    const client = await connectClient(titus.port)
    client.tls.write('x')
    const b = await backend.nextConnection()
    await once(b.socket, 'data')
    b.socket.resetAndDestroy()
    t.equal(await client.closed, 'ECONNRESET', 'client saw a reset')
  })
})

t.test('a backend that refuses drops the client after the handshake', async t => {
  // A port that was free a moment ago and has nobody listening.
  const probe = createServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const closedPort = (probe.address() as AddressInfo).port
  await new Promise(resolve => probe.close(resolve))
  const titus = await startTitus(t, { backendPort: closedPort, key: leaf.key, cert: leaf.chain })
  const client = await connectClient(titus.port)
  client.tls.write('anyone there?')
  const ended = await Promise.race([client.sawEnd.then(() => true), sleep(5000).then(() => false)])
  t.ok(ended, 'the client connection is closed')
  t.equal(client.received(), '', 'nothing was answered')
  await t.resolves(titus.waitForLog(/outcome=.*backend unavailable/), 'titus logs why')
})

t.test('listen forms', async t => {
  const echo = await startEchoBackend(t)
  // Beside the test's 127.0.0.1 listener: an IPv6 one, and titus's `port`, which is [::] dual-stack.
  const titus = await startTitus(t, { backendPort: echo.port, key: leaf.key, cert: leaf.chain, args: ['--listen', '[::1]:0', '--port', '0'] })
  const portOf = async (pattern: RegExp) => Number(pattern.exec(await titus.waitForLog(pattern))![1])
  const v6Port = await portOf(/listening on \[::1\]:(\d+)/)
  const anyPort = await portOf(/listening on \[::\]:(\d+)/)
  for (const [host, port, label] of [['::1', v6Port, 'IPv6 listener'], ['127.0.0.1', anyPort, 'port: IPv4 on [::]'], ['::1', anyPort, 'port: IPv6 on [::]']] as const) {
    const client = await connectClient(port, host)
    client.tls.end(`via ${label}`)
    await client.sawEnd
    t.equal(client.received(), `via ${label}`, `${label} serves`)
  }
  const v4 = await nodeClient(t, { port: titus.port, caFile: certs.caFile })
  t.ok(v4.ok, 'the IPv4 listener still serves', { detail: v4.detail })
})

t.test('0.0.0.0 and [::] on the same port: [::] becomes IPv6 only and both serve', async t => {
  const echo = await startEchoBackend(t)
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const port = (probe.address() as AddressInfo).port
  probe.close()
  const titus = await startTitus(t, { backendPort: echo.port, key: leaf.key, cert: leaf.chain, args: ['--listen', `0.0.0.0:${port}`, '--listen', `[::]:${port}`] })
  await titus.waitForLog(new RegExp(`listening on \\[::\\]:${port}`))
  for (const [host, label] of [['127.0.0.1', 'IPv4 on 0.0.0.0'], ['::1', 'IPv6 on [::]']] as const) {
    const client = await connectClient(port, host)
    client.tls.end(`via ${label}`)
    await client.sawEnd
    t.equal(client.received(), `via ${label}`, `${label} serves`)
  }
})
