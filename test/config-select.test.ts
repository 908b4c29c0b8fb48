// Which vhost a connection gets: local address, local port, SNI; "" = no SNI; first match wins; else none. In the
// resolver, and through a live titus with real clients, each vhost with its own certificate and backend.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { selectVhost, parseTitusConf, resolveConfig } from '../src/config/index.js'
import { createCertSet, type Teardown } from './support/certs.js'
import { run } from './support/process.js'
import { startTitus } from './support/titus.js'

const CONF = `key /k
cert /c
backend 127.0.0.1
backend-port 80
vhost
	local-address 192.0.2.5
	local-port 443
vhost
	local-address 2001:DB8:0:0::1
	sni-name WWW.Example.com
vhost
	sni-name api.example.com
	sni-name ""
vhost
	local-port 8443
`

t.test('first matching vhost wins; unmatched connections get none', async t => {
  const cfg = resolveConfig(parseTitusConf(CONF, '/etc/titus.conf'))
  const pick = (localAddress: string, localPort: number, serverName?: string) => selectVhost(cfg, { localAddress, localPort, ...(serverName !== undefined && { serverName }) })?.id
  t.equal(pick('192.0.2.5', 443, 'www.example.com'), 1, 'address and port, any SNI')
  t.equal(pick('::ffff:192.0.2.5', 443), 1, 'IPv4-mapped address from a dual-stack socket')
  t.equal(pick('192.0.2.5', 444, 'www.example.com'), undefined, 'wrong port, and no later vhost matches')
  t.equal(pick('2001:db8::1', 443, 'www.EXAMPLE.com'), 2, 'IPv6 compared canonically, SNI case-insensitively')
  t.equal(pick('2001:0db8:0000::0001', 443, 'www.example.com'), 2)
  t.equal(pick('2001:db8::1', 443, 'api.example.com'), 3, 'SNI mismatch falls through to the next vhost')
  t.equal(pick('2001:db8::1', 443), 3, '"" matches a client without SNI')
  t.equal(pick('2001:db8::1', 443, ''), 3, 'an empty server name counts as none')
  t.equal(pick('10.0.0.1', 443, 'www.example.com'), undefined, 'no match: the connection is dropped')
  t.equal(pick('10.0.0.1', 8443, 'anything'), 4)
  t.equal(pick('192.0.2.5', 8443, 'api.example.com'), 3, 'order decides, not specificity')
})

t.test('without vhost blocks the implicit vhost serves everything', async t => {
  const cfg = resolveConfig(parseTitusConf('key /k\ncert /c\nbackend b\nbackend-port 1\n', '/x.conf'))
  t.equal(selectVhost(cfg, { localAddress: '::1', localPort: 1 })?.id, 0)
  t.equal(selectVhost(cfg, { localAddress: '127.0.0.1', localPort: 65535, serverName: 'x' })?.id, 0)
})

// A backend that answers the first bytes of each connection with its name and what it got, then closes.
async function startNamedBackend(t: Teardown, name: string): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<Socket>()
  let connections = 0
  const server = createServer(socket => {
    connections++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    socket.once('data', (b: Buffer) => socket.end(`${name} got ${b.toString()}`))
  })
  t.teardown(() => new Promise<void>(resolve => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as AddressInfo).port, connections: () => connections }
}

// A port that was free a moment ago, for a listener whose number the configuration must name in advance.
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

interface Answer {
  // CN of the certificate the server presented.
  certificate?: string
  received: string
  alert?: number
}

// node:tls, chain verified against the test CA; no servername: no SNI at all (the host is an IP address).
function nodeAsk(port: number, caFile: string, servername: string | undefined): Promise<Answer> {
  return new Promise(resolve => {
    const socket = tlsConnect({
      host: '127.0.0.1', port, ca: readFileSync(caFile), servername: servername ?? '',
      // The test certificates name localhost only; the chain is still verified.
      checkServerIdentity: () => undefined,
    })
    let received = ''
    let certificate: string | undefined
    let alert: number | undefined
    const timer = setTimeout(() => socket.destroy(new Error('timed out after 15 s')), 15000)
    socket.once('secureConnect', () => {
      certificate = socket.getPeerCertificate().subject?.CN as string | undefined
      socket.write('ping')
    })
    socket.on('data', (b: Buffer) => (received += b.toString()))
    socket.on('error', e => {
      const m = /alert number (\d+)/.exec(e.message)
      if (m) alert = Number(m[1])
      else received += `<${e.message}>`
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ certificate, received, ...(alert !== undefined && { alert }) })
    })
  })
}

// openssl s_client, -noservername when servername is undefined.
async function opensslAsk(t: Teardown, port: number, caFile: string, servername: string | undefined): Promise<Answer> {
  const r = await run(t, 'openssl', [
    's_client', '-connect', `127.0.0.1:${port}`, ...(servername === undefined ? ['-noservername'] : ['-servername', servername]),
    '-CAfile', caFile, '-verify_return_error', '-brief', '-ign_eof',
  ], { input: 'ping', timeoutMs: 20000 })
  const certificate = /^Peer certificate: .*CN ?= ?([^,\n]+)$/m.exec(r.stderr)?.[1]
  const alert = /alert number (\d+)/.exec(r.stderr)?.[1]
  return { certificate, received: r.stdout.toString(), ...(alert !== undefined && { alert: Number(alert) }) }
}

t.test('a live titus: each vhost its own certificate and backend, by SNI, no SNI and local port; no match, no backend', async t => {
  const certs = createCertSet(t)
  const [a, noSni, byPort, fallback] = await Promise.all(['backend-a', 'backend-no-sni', 'backend-port', 'backend-global'].map(n => startNamedBackend(t, n)))
  const portOnly = await freePort()
  const conf = join(certs.dir, 'select.conf')
  writeFileSync(conf, `vhost
	sni-name   A.example
	key        ${certs.leaves.rsa.key}
	cert       ${certs.leaves.rsa.chain}
	backend-port ${a!.port}
vhost
	sni-name   ""
	key        ${certs.leaves.p256.key}
	cert       ${certs.leaves.p256.chain}
	backend-port ${noSni!.port}
vhost
	local-port ${portOnly}
	key        ${certs.leaves.p384.key}
	cert       ${certs.leaves.p384.chain}
	backend-port ${byPort!.port}
`)
  // The command line's key, cert and backend are the globals every vhost above overrides (but backend, the host).
  const titus = await startTitus(t, {
    backendPort: fallback!.port, key: certs.leaves.ed25519.key, cert: certs.leaves.ed25519.chain,
    args: ['--config', conf, '--listen', `127.0.0.1:${portOnly}`],
  })
  await titus.waitForLog(new RegExp(`listening on 127\\.0\\.0\\.1:${portOnly}\\b`))
  const anyPort = titus.log.map(l => /listening on 127\.0\.0\.1:(\d+)/.exec(l)?.[1]).map(Number).find(p => p > 0 && p !== portOnly)!
  t.ok(anyPort, 'the second listener is up')

  const cases: [string, number, string | undefined, Answer][] = [
    ['SNI a.example (any case): vhost 1', anyPort, 'a.EXAMPLE', { certificate: 'localhost rsa', received: 'backend-a got ping' }],
    ['no SNI: the "" vhost', anyPort, undefined, { certificate: 'localhost p256', received: 'backend-no-sni got ping' }],
    ['SNI a.example on the local-port listener: vhost 1 still comes first', portOnly, 'a.example', { certificate: 'localhost rsa', received: 'backend-a got ping' }],
    ['another name on the local-port listener: the local-port vhost', portOnly, 'b.example', { certificate: 'localhost p384', received: 'backend-port got ping' }],
    ['no SNI on the local-port listener: the "" vhost comes first', portOnly, undefined, { certificate: 'localhost p256', received: 'backend-no-sni got ping' }],
  ]
  for (const [name, port, servername, want] of cases) {
    t.same(await nodeAsk(port, certs.caFile, servername), want, `node:tls, ${name}`)
    t.same(await opensslAsk(t, port, certs.caFile, servername), want, `openssl s_client, ${name}`)
  }
  const served = [a!, noSni!, byPort!, fallback!].map(b => b.connections())
  t.same(served, [4, 4, 2, 0], 'one backend connection per served client, at the vhost\'s backend')

  const unmatched = { received: '', alert: 112 }
  t.same(await nodeAsk(anyPort, certs.caFile, 'b.example'), unmatched, 'node:tls, an unmatched name: unrecognized_name')
  t.same(await opensslAsk(t, anyPort, certs.caFile, 'b.example'), unmatched, 'openssl s_client, an unmatched name: unrecognized_name')
  t.same([a!, noSni!, byPort!, fallback!].map(b => b.connections()), served, 'and no backend connection')
})
