// Engine-level interop: TlsServer behind a loopback socket, node:tls as the client (the CLI-level interop
// suite drives openssl, gnutls and curl through the whole proxy).
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { createLocalSigner, parseCertificateChain } from '../src/crypto/keys.js'
import { CipherSuite, NamedGroup, TlsServer, type Credential, type TlsEvent, type TlsServerOptions } from '../src/tls/index.js'
import { HandMadeClient13 } from './support/client13.js'
import {
  CONTENT_TYPE,
  EXTENSION,
  GROUP_CODE,
  HANDSHAKE_TYPE,
  SUITE_CODE,
  clientHello,
  encryptedExtensions,
  ext,
  p256PublicKey,
  parseHandshakeMessages,
  parseRecords,
  parseServerHello,
  record,
  x25519PublicKey,
} from './support/wire.js'

const dir = mkdtempSync(join(tmpdir(), 'titus-tls-handshake-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

interface TestCert {
  name: string
  certPem: string
  credential: Credential
}

function makeCert(name: string, keyArgs: string[], cn = 'localhost'): TestCert {
  const keyFile = join(dir, `${name}.key`)
  const certFile = join(dir, `${name}.crt`)
  execFileSync('openssl', [
    'req', '-x509', ...keyArgs, '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`,
  ], { stdio: 'ignore' })
  const certPem = readFileSync(certFile, 'utf8')
  return {
    name,
    certPem,
    credential: { chain: parseCertificateChain(certPem), signer: createLocalSigner(readFileSync(keyFile, 'utf8')) },
  }
}

const certs = [
  makeCert('rsa2048', ['-newkey', 'rsa:2048']),
  makeCert('p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']),
  makeCert('p384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']),
  makeCert('ed25519', ['-newkey', 'ed25519']),
]
const [rsa, p256] = certs

interface ServerConnection {
  events: TlsEvent[]
  engine: TlsServer
  received: Buffer[]
  done: Promise<void>
}

/** A loopback echo server driving one TlsServer per connection. */
async function startServer(
  t: Test,
  options: TlsServerOptions,
  onHandshake?: (conn: ServerConnection, socket: net.Socket) => void,
): Promise<{ port: number; connections: ServerConnection[] }> {
  const connections: ServerConnection[] = []
  const server = net.createServer(socket => {
    const engine = new TlsServer(options)
    let finish!: () => void
    const conn: ServerConnection = { events: [], engine, received: [], done: new Promise(resolve => (finish = resolve)) }
    connections.push(conn)
    const send = (chunks: Uint8Array[]): void => {
      for (const chunk of chunks) if (!socket.destroyed) socket.write(chunk)
    }
    socket.on('data', async (data: Buffer) => {
      const out = await engine.feed(data)
      send(out.toClient)
      conn.events.push(...out.events)
      for (const event of out.events) if (event.type === 'handshake') onHandshake?.(conn, socket)
      for (const chunk of out.plaintext) {
        conn.received.push(Buffer.from(chunk))
        send(engine.write(chunk).toClient) // echo
      }
      if (out.events.some(e => e.type === 'close_notify')) {
        send(engine.close().toClient)
        socket.end()
      }
      if (out.events.some(e => e.type === 'error')) socket.end()
    })
    socket.on('error', () => {})
    socket.on('close', () => finish())
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return { port: (server.address() as net.AddressInfo).port, connections }
}

/** Connects with node:tls, sends `message`, waits for the echo, closes; resolves with what the client saw. */
function nodeClient(port: number, cert: TestCert, options: tls.ConnectionOptions = {}, message = 'hello titus') {
  return new Promise<{ cipher?: tls.CipherNameAndProtocol; alpn?: string | false | null; echoed: string }>(
    (resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: cert.certPem,
        minVersion: 'TLSv1.3',
        ...options,
      })
      let echoed = ''
      let cipher: tls.CipherNameAndProtocol | undefined
      let alpn: string | false | null | undefined
      socket.on('secureConnect', () => {
        cipher = socket.getCipher()
        alpn = socket.alpnProtocol
        socket.write(message)
      })
      socket.on('data', data => {
        echoed += data.toString()
        if (echoed.length >= message.length) socket.end()
      })
      socket.on('error', reject)
      socket.on('close', () => resolve({ cipher, alpn, echoed }))
    },
  )
}

const groupClientNames: Record<string, string> = {
  x25519: 'X25519',
  secp256r1: 'P-256',
  secp384r1: 'P-384',
  ffdhe2048: 'ffdhe2048',
  ffdhe3072: 'ffdhe3072',
  ffdhe4096: 'ffdhe4096',
}
const suites = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']

t.test('full handshake for every group x suite x certificate type', async t => {
  for (const cert of certs) {
    const { port, connections } = await startServer(t, { selectCredential: () => cert.credential })
    for (const [group, clientGroup] of Object.entries(groupClientNames)) {
      for (const suite of suites) {
        const seen = await nodeClient(port, cert, { ecdhCurve: clientGroup, ciphers: suite })
        const conn = connections.at(-1)!
        await conn.done
        const handshake = conn.events.find(e => e.type === 'handshake')
        const label = `${cert.name} ${group} ${suite}`
        t.equal(seen.echoed, 'hello titus', `${label}: echo`)
        t.equal(seen.cipher?.name, suite, `${label}: client cipher`)
        t.match(handshake, { info: { version: 'TLSv1.3', cipherSuite: suite, group, serverName: 'localhost', helloRetryRequest: false } }, `${label}: event`)
        t.ok(conn.events.some(e => e.type === 'close_notify'), `${label}: close_notify received`)
        t.notOk(conn.events.some(e => e.type === 'error'), `${label}: no error`)
      }
    }
  }
})

t.test('signature scheme follows the certificate', async t => {
  const expected: Record<string, string> = {
    rsa2048: 'rsa_pss_rsae_sha256',
    p256: 'ecdsa_secp256r1_sha256',
    p384: 'ecdsa_secp384r1_sha384',
    ed25519: 'ed25519',
  }
  for (const cert of certs) {
    const { port, connections } = await startServer(t, { selectCredential: () => cert.credential })
    await nodeClient(port, cert)
    await connections[0].done
    t.match(connections[0].events.find(e => e.type === 'handshake'), { info: { signatureScheme: expected[cert.name] } }, cert.name)
  }
})

t.test('server preference vs client preference for suites and groups', async t => {
  const options = {
    selectCredential: () => p256.credential,
    cipherSuites: [CipherSuite.TLS_AES_256_GCM_SHA384, CipherSuite.TLS_AES_128_GCM_SHA256],
    groups: [NamedGroup.secp384r1, NamedGroup.x25519],
  }
  const clientOptions = { ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384', ecdhCurve: 'X25519:P-384' }
  const ours = await startServer(t, options)
  const seen = await nodeClient(ours.port, p256, clientOptions)
  t.equal(seen.cipher?.name, 'TLS_AES_256_GCM_SHA384', 'server suite preference')
  await ours.connections[0].done
  // The client sent only an X25519 share: we take it rather than cost a round trip for P-384.
  t.match(ours.connections[0].events.find(e => e.type === 'handshake'), { info: { group: 'x25519', helloRetryRequest: false } })

  const theirs = await startServer(t, { ...options, honorClientOrder: true })
  t.equal((await nodeClient(theirs.port, p256, clientOptions)).cipher?.name, 'TLS_AES_128_GCM_SHA256', 'client suite preference')
})

t.test('HelloRetryRequest when the client sent no acceptable key share', async t => {
  const { port, connections } = await startServer(t, { selectCredential: () => p256.credential, groups: [NamedGroup.secp384r1] })
  // OpenSSL sends a key share for the first group only.
  const seen = await nodeClient(port, p256, { ecdhCurve: 'X25519:P-384' })
  t.equal(seen.echoed, 'hello titus')
  await connections[0].done
  t.match(connections[0].events.find(e => e.type === 'handshake'), { info: { group: 'secp384r1', helloRetryRequest: true } })

  const ff = await startServer(t, { selectCredential: () => rsa.credential, groups: [NamedGroup.ffdhe3072] })
  t.equal((await nodeClient(ff.port, rsa, { ecdhCurve: 'X25519:ffdhe3072' })).echoed, 'hello titus', 'HRR to ffdhe3072')
  await ff.connections[0].done
  t.match(ff.connections[0].events.find(e => e.type === 'handshake'), { info: { group: 'ffdhe3072', helloRetryRequest: true } })
})

t.test('no common group is handshake_failure', async t => {
  const { port, connections } = await startServer(t, { selectCredential: () => p256.credential, groups: [NamedGroup.ffdhe2048] })
  await t.rejects(nodeClient(port, p256, { ecdhCurve: 'X25519:P-256' }), /handshake failure/)
  await connections[0].done
  t.match(connections[0].events, [{ type: 'alert', sent: true, name: 'handshake_failure' }, { type: 'error' }])
})

t.test('ALPN', async t => {
  const { port, connections } = await startServer(t, { selectCredential: () => p256.credential, alpn: ['h2', 'http/1.1'] })
  t.equal((await nodeClient(port, p256, { ALPNProtocols: ['http/1.1', 'h2'] })).alpn, 'h2', 'server preference')
  t.equal((await nodeClient(port, p256, { ALPNProtocols: ['http/1.1'] })).alpn, 'http/1.1')
  t.equal((await nodeClient(port, p256, {})).alpn, false, 'no ALPN from the client, none back')
  await t.rejects(nodeClient(port, p256, { ALPNProtocols: ['spdy/3'] }), /no application protocol/)
  await connections.at(-1)!.done
  t.match(connections.at(-1)!.events, [{ type: 'alert', sent: true, description: 120 }, { type: 'error' }])

  const ignoring = await startServer(t, { selectCredential: () => p256.credential })
  t.equal((await nodeClient(ignoring.port, p256, { ALPNProtocols: ['h2'] })).alpn, false, 'ALPN ignored when not configured')
})

t.test('SNI selects the credential; unknown name is unrecognized_name', async t => {
  const other = makeCert('other', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'other.example')
  const seenNames: Array<string | undefined> = []
  const { port, connections } = await startServer(t, {
    selectCredential: hello => {
      seenNames.push(hello.serverName)
      return hello.serverName === 'other.example' ? other.credential : hello.serverName === 'localhost' ? p256.credential : undefined
    },
  })
  t.equal((await nodeClient(port, other, { servername: 'other.example' })).echoed, 'hello titus')
  t.equal((await nodeClient(port, p256, { servername: 'localhost' })).echoed, 'hello titus')
  await t.rejects(nodeClient(port, p256, { servername: 'nobody.example' }), /unrecognized name/)
  t.same(seenNames, ['other.example', 'localhost', 'nobody.example'])
  await connections.at(-1)!.done
  t.match(connections.at(-1)!.events, [{ type: 'alert', sent: true, name: 'unrecognized_name' }, { type: 'error' }])
})

t.test('large application data both ways and record_size_limit', async t => {
  const { port, connections } = await startServer(t, { selectCredential: () => p256.credential })
  const message = 'x'.repeat(200_000)
  const seen = await nodeClient(port, p256, {}, message)
  t.equal(seen.echoed.length, message.length)
  t.equal(seen.echoed, message)
  await connections[0].done
  t.equal(Buffer.concat(connections[0].received).length, message.length)
})

t.test('server-initiated KeyUpdate with update_requested', async t => {
  const { port, connections } = await startServer(t, { selectCredential: () => p256.credential }, (conn, socket) => {
    socket.write(Buffer.concat(conn.engine.requestKeyUpdate(true).toClient))
  })
  const seen = await nodeClient(port, p256)
  t.equal(seen.echoed, 'hello titus', 'data flows after both sides updated keys')
  await connections[0].done
  t.notOk(connections[0].events.some(e => e.type === 'error'))
})

// TLS 1.2 (RFC 5246 with RFC 8422, RFC 7627, RFC 5746, RFC 7919, RFC 5288, RFC 7905) against node:tls.
const tls12Suites: Record<string, { openssl: string; auth: 'RSA' | 'ECDSA'; dhe: boolean }> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: { openssl: 'ECDHE-ECDSA-AES128-GCM-SHA256', auth: 'ECDSA', dhe: false },
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: { openssl: 'ECDHE-ECDSA-AES256-GCM-SHA384', auth: 'ECDSA', dhe: false },
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: { openssl: 'ECDHE-ECDSA-CHACHA20-POLY1305', auth: 'ECDSA', dhe: false },
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: { openssl: 'ECDHE-RSA-AES128-GCM-SHA256', auth: 'RSA', dhe: false },
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: { openssl: 'ECDHE-RSA-AES256-GCM-SHA384', auth: 'RSA', dhe: false },
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: { openssl: 'ECDHE-RSA-CHACHA20-POLY1305', auth: 'RSA', dhe: false },
  TLS_DHE_RSA_WITH_AES_128_GCM_SHA256: { openssl: 'DHE-RSA-AES128-GCM-SHA256', auth: 'RSA', dhe: true },
  TLS_DHE_RSA_WITH_AES_256_GCM_SHA384: { openssl: 'DHE-RSA-AES256-GCM-SHA384', auth: 'RSA', dhe: true },
  TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256: { openssl: 'DHE-RSA-CHACHA20-POLY1305', auth: 'RSA', dhe: true },
}
const tls12Options: tls.ConnectionOptions = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }

t.test('TLS 1.2: every suite x curve x certificate type', async t => {
  for (const cert of certs) {
    const { port, connections } = await startServer(t, { selectCredential: () => cert.credential })
    const auth = cert.name === 'rsa2048' ? 'RSA' : 'ECDSA'
    for (const [suite, spec] of Object.entries(tls12Suites)) {
      if (spec.auth !== auth) continue
      for (const group of spec.dhe ? ['ffdhe2048'] : ['x25519', 'secp256r1', 'secp384r1']) {
        // RFC 8422 §5.1.1: the client must also name the curve of an ECDSA certificate.
        const certCurve = { p256: 'P-256', p384: 'P-384' }[cert.name as 'p256']
        const offered = [groupClientNames[group], ...(certCurve && certCurve !== groupClientNames[group] ? [certCurve] : [])]
        const curves = offered.join(':')
        // The server's preference among what was offered: x25519, then P-256, then P-384.
        const expectedGroup = spec.dhe ? group : ['x25519', 'secp256r1', 'secp384r1'].find(g => offered.includes(groupClientNames[g]))
        const seen = await nodeClient(port, cert, { ...tls12Options, ciphers: spec.openssl, ...(spec.dhe ? {} : { ecdhCurve: curves }) })
        const conn = connections.at(-1)!
        await conn.done
        const label = `${cert.name} ${group} ${suite}`
        t.equal(seen.echoed, 'hello titus', `${label}: echo`)
        t.equal(seen.cipher?.version, 'TLSv1.2', `${label}: client version`)
        t.equal(seen.cipher?.standardName, suite, `${label}: client cipher`)
        t.match(conn.events.find(e => e.type === 'handshake'), { info: { version: 'TLSv1.2', cipherSuite: suite, group: expectedGroup, serverName: 'localhost' } }, `${label}: event`)
        t.notOk(conn.events.some(e => e.type === 'error'), `${label}: no error`, { events: conn.events })
      }
    }
  }
})

t.test('TLS 1.2: the vhost turns versions off; a TLS 1.2-only credential gets no sentinel-free TLS 1.3', async t => {
  const { port } = await startServer(t, { selectCredential: () => ({ ...p256.credential, versions: [0x0303] }) })
  t.equal((await nodeClient(port, p256, { minVersion: 'TLSv1.2' })).cipher?.version, 'TLSv1.2', 'TLS 1.3 client falls back to 1.2')
  const only13 = await startServer(t, { selectCredential: () => ({ ...p256.credential, versions: [0x0304] }) })
  await t.rejects(nodeClient(only13.port, p256, tls12Options), /protocol version/)
})

t.test('TLS 1.2: ALPN, and EMS required unless the policy relaxes it', async t => {
  const { port } = await startServer(t, { selectCredential: () => rsa.credential, alpn: ['h2', 'http/1.1'] })
  t.equal((await nodeClient(port, rsa, { ...tls12Options, ALPNProtocols: ['http/1.1', 'h2'] })).alpn, 'h2')
})

// Hand-made ClientHellos straight into the engine: what RFC 8446 and RFC 8449 require of the server where node:tls
// would never send the hello in question.
class EngineUnderTest {
  readonly engine: TlsServer
  readonly events: TlsEvent[] = []
  // Everything the server sent so far.
  sent = Buffer.alloc(0)

  // `onOutput` sees each batch the server sends; plaintext the engine delivers is echoed back.
  constructor(options: TlsServerOptions, private readonly onOutput: (bytes: Buffer) => void = () => {}) {
    this.engine = new TlsServer(options)
  }

  async feed(...records: Buffer[]): Promise<void> {
    const out = await this.engine.feed(Buffer.concat(records))
    this.events.push(...out.events)
    this.take(Buffer.concat(out.toClient))
    for (const data of out.plaintext) this.take(Buffer.concat(this.engine.write(data).toClient))
  }

  get alertsSent(): string[] {
    return this.events.flatMap(e => (e.type === 'alert' && e.sent ? [e.name] : []))
  }

  get handshakeDone(): boolean {
    return this.events.some(e => e.type === 'handshake')
  }

  private take(bytes: Buffer): void {
    this.sent = Buffer.concat([this.sent, bytes])
    this.onOutput(bytes)
  }
}

/** A hand-made client's handshake with the engine: its hello with `early` records, then its Finished with `after` records. */
async function handMadeHandshake(options: TlsServerOptions, client: HandMadeClient13, early: Buffer[] = [], after: (client: HandMadeClient13) => Buffer[] = () => []) {
  const server = new EngineUnderTest(options, bytes => client.receive(bytes))
  await server.feed(client.helloRecord, ...early)
  if (client.serverFinished) await server.feed(client.finishedRecord(), ...after(client))
  return server
}

const p256Options: TlsServerOptions = { selectCredential: () => p256.credential }

const serverHellos = (bytes: Buffer) =>
  parseRecords(bytes).records.flatMap(r => (r.type === CONTENT_TYPE.handshake ? parseHandshakeMessages(r.body) : [])).filter(m => m.type === HANDSHAKE_TYPE.serverHello)

t.test('record_size_limit (RFC 8449) in EncryptedExtensions only when the client offered it', async t => {
  const plain = new HandMadeClient13()
  const server = await handMadeHandshake(p256Options, plain, [], c => [c.seal(CONTENT_TYPE.applicationData, Buffer.from('ping'))])
  t.ok(server.handshakeDone, 'handshake complete')
  t.equal(Buffer.concat(plain.applicationData).toString(), 'ping', 'echo')
  const ee = plain.messages.find(m => m.type === HANDSHAKE_TYPE.encryptedExtensions)!
  t.notOk(encryptedExtensions(ee.body).has(EXTENSION.recordSizeLimit), 'not offered: not in EncryptedExtensions (RFC 8446 §4.2)')

  for (const limit of [64, 256]) {
    const limited = new HandMadeClient13([ext.recordSizeLimit(limit)])
    const data = Buffer.alloc(3000, 'y')
    const run = await handMadeHandshake(p256Options, limited, [], c => [c.seal(CONTENT_TYPE.applicationData, data)])
    t.ok(run.handshakeDone, `limit ${limit}: handshake complete`)
    t.same(Buffer.concat(limited.applicationData), data, `limit ${limit}: echo`)
    const eeLimited = limited.messages.find(m => m.type === HANDSHAKE_TYPE.encryptedExtensions)!
    t.equal(encryptedExtensions(eeLimited.body).get(EXTENSION.recordSizeLimit)?.readUInt16BE(0), 2 ** 14 + 1, `limit ${limit}: ours is 2^14 + 1`)
    // Every protected record, from EncryptedExtensions on: inner plaintext and content type within the limit (RFC 8449 §4).
    const protectedRecords = limited.serverRecords.filter(r => r.type === CONTENT_TYPE.applicationData)
    t.ok(protectedRecords.length > data.length / limit, `limit ${limit}: ${protectedRecords.length} protected records`)
    t.equal(Math.max(...protectedRecords.map(r => r.body.length - 16)), limit, `limit ${limit}: none larger than the limit, some as large`)
  }

  const tooSmall = new EngineUnderTest(p256Options)
  await tooSmall.feed(new HandMadeClient13([ext.recordSizeLimit(63)]).helloRecord)
  t.same(tooSmall.alertsSent, ['illegal_parameter'], 'a limit of 63: illegal_parameter')
})

t.test('pre_shared_key without psk_key_exchange_modes: missing_extension (RFC 8446 §4.2.9)', async t => {
  const without = new EngineUnderTest(p256Options)
  await without.feed(new HandMadeClient13([ext.preSharedKey()]).helloRecord)
  t.same(without.alertsSent, ['missing_extension'])

  const client = new HandMadeClient13([ext.pskKeyExchangeModes(), ext.preSharedKey()])
  const server = await handMadeHandshake(p256Options, client)
  t.ok(server.handshakeDone, 'with the modes: the PSK is declined and the full handshake completes')
  t.notOk(parseServerHello(serverHellos(server.sent)[0]!.body).extensions.includes(EXTENSION.preSharedKey), 'no pre_shared_key in the ServerHello')
})

t.test('change_cipher_spec records before the client Finished are dropped, any number of them (RFC 8446 §5)', async t => {
  const ccs = record(CONTENT_TYPE.changeCipherSpec, Buffer.of(1))
  const client = new HandMadeClient13()
  const server = new EngineUnderTest(p256Options, bytes => client.receive(bytes))
  await server.feed(client.helloRecord, ccs, ccs)
  await server.feed(ccs, client.finishedRecord(), client.seal(CONTENT_TYPE.applicationData, Buffer.from('after three')))
  t.ok(server.handshakeDone, 'handshake complete')
  t.same(server.alertsSent, [])
  t.equal(Buffer.concat(client.applicationData).toString(), 'after three', 'echo')
  await server.feed(ccs)
  t.same(server.alertsSent, ['unexpected_message'], 'after the handshake: unexpected_message')
})

// A server that has P-256 only answers an X25519 share with a HelloRetryRequest for P-256.
const retryOptions: TlsServerOptions = { selectCredential: () => p256.credential, groups: [NamedGroup.secp256r1] }
const retryHelloExtensions = (keyShare: Buffer, extra: Buffer[], signatureSchemes?: number[]) => [
  ext.supportedVersions([0x0304]),
  ext.supportedGroups([GROUP_CODE.x25519, GROUP_CODE.secp256r1]),
  ext.signatureAlgorithms(signatureSchemes),
  keyShare,
  ...extra,
]
const earlyDataOffer = () => [ext.earlyData(), ext.pskKeyExchangeModes(), ext.preSharedKey()]
// An encrypted 0-RTT record as large as TLS 1.3 allows (2^14 + 256, RFC 8446 §5.2), or of `size` bytes.
const earlyRecord = (size = 2 ** 14 + 256) => record(CONTENT_TYPE.applicationData, randomBytes(size))

/** Sends a first ClientHello with `firstExtra`, expects a HelloRetryRequest, and returns the engine after the second. */
async function helloRetry(
  firstExtra: Buffer[],
  second: (hello: { random: Buffer; sessionId: Buffer; cookie: Buffer }) => Buffer,
  between: Buffer[] = [],
): Promise<EngineUnderTest> {
  const random = randomBytes(32)
  const sessionId = randomBytes(32)
  const server = new EngineUnderTest(retryOptions)
  const x25519Share = ext.keyShare([{ group: GROUP_CODE.x25519, key: x25519PublicKey() }])
  await server.feed(record(CONTENT_TYPE.handshake, clientHello({ random, sessionId, extensions: retryHelloExtensions(x25519Share, firstExtra) })), ...between)
  const [hrr] = serverHellos(server.sent)
  const info = parseServerHello(hrr!.body)
  if (!info.helloRetryRequest || !info.cookie) throw new Error('expected a HelloRetryRequest with a cookie')
  await server.feed(record(CONTENT_TYPE.handshake, second({ random, sessionId, cookie: info.cookie })))
  return server
}

const p256Share = () => ext.keyShare([{ group: GROUP_CODE.secp256r1, key: p256PublicKey() }])
// The second ClientHello as RFC 8446 §4.1.2 has it: the first with the requested share, the cookie, and `extra`.
const secondHello = (extra: Buffer[] = [], fields: { random?: Buffer; legacyVersion?: number; cipherSuites?: number[]; signatureSchemes?: number[] } = {}) =>
  ({ random, sessionId, cookie }: { random: Buffer; sessionId: Buffer; cookie: Buffer }) =>
    clientHello({ random, sessionId, ...fields, extensions: retryHelloExtensions(p256Share(), [ext.cookie(cookie), ...extra], fields.signatureSchemes) })

t.test('second ClientHello after a HelloRetryRequest (RFC 8446 §4.1.2)', async t => {
  const answered = (server: EngineUnderTest) => serverHellos(server.sent).map(m => parseServerHello(m.body).helloRetryRequest)
  const good = await helloRetry([], secondHello([ext.padding(40)]))
  t.same(good.alertsSent, [], 'as the RFC has it, with padding added: no alert')
  t.same(answered(good), [true, false], 'HelloRetryRequest, then ServerHello')

  const changes: [string, (hello: { random: Buffer; sessionId: Buffer; cookie: Buffer }) => Buffer][] = [
    ['a new random', secondHello([], { random: randomBytes(32) })],
    ['another legacy_version', secondHello([], { legacyVersion: 0x0302 })],
    ['fewer cipher suites', secondHello([], { cipherSuites: [SUITE_CODE.TLS_AES_128_GCM_SHA256] })],
    ['other signature_algorithms', secondHello([], { signatureSchemes: [0x0403] })],
    ['an extension added (ALPN)', secondHello([ext.alpn(['h2'])])],
    ['an extension added (record_size_limit)', secondHello([ext.recordSizeLimit(1024)])],
    ['early_data kept', secondHello([ext.earlyData()])],
    ['no cookie', ({ random, sessionId }) => clientHello({ random, sessionId, extensions: retryHelloExtensions(p256Share(), []) })],
  ]
  for (const [what, second] of changes) {
    const server = await helloRetry([], second)
    t.same(server.alertsSent, ['illegal_parameter'], `${what}: illegal_parameter`)
    t.same(answered(server), [true], `${what}: no ServerHello`)
  }
})

t.test('rejected 0-RTT is skipped (RFC 8446 §4.2.10)', async t => {
  const client = new HandMadeClient13(earlyDataOffer())
  const skipped = await handMadeHandshake(p256Options, client, [earlyRecord(), earlyRecord(), earlyRecord(100)], c => [
    c.seal(CONTENT_TYPE.applicationData, Buffer.from('1-RTT data')),
  ])
  t.ok(skipped.handshakeDone, 'without a HelloRetryRequest: undecryptable records skipped, the handshake completes')
  t.equal(Buffer.concat(client.applicationData).toString(), '1-RTT data', 'echo')
  t.notOk(encryptedExtensions(client.messages.find(m => m.type === HANDSHAKE_TYPE.encryptedExtensions)!.body).has(EXTENSION.earlyData), 'early_data not accepted')

  // After a HelloRetryRequest the server skips every application_data record (up to its budget) until the second hello.
  const ccs = record(CONTENT_TYPE.changeCipherSpec, Buffer.of(1))
  const afterRetry = await helloRetry(earlyDataOffer(), secondHello([ext.pskKeyExchangeModes(), ext.preSharedKey()]), [ccs, earlyRecord(), earlyRecord()])
  t.same(afterRetry.alertsSent, [], 'with a HelloRetryRequest: two records of 2^14 + 256 bytes skipped, no alert')
  t.same(serverHellos(afterRetry.sent).map(m => parseServerHello(m.body).helloRetryRequest), [true, false], 'and the second ClientHello is answered')

  const tooLarge = await helloRetry(earlyDataOffer(), secondHello(), [earlyRecord(2 ** 14 + 257)])
  t.same(tooLarge.alertsSent, ['record_overflow'], 'a record longer than any TLS 1.3 ciphertext: record_overflow')
})

t.test('a connection that fails mid-handshake zeroes the secrets its handshake still held', async t => {
  const client = new HandMadeClient13()
  const server = new EngineUnderTest(p256Options, bytes => client.receive(bytes))
  await server.feed(client.helloRecord)
  t.ok(client.serverFinished, "the server's flight arrived")
  // What the TLS 1.3 handshake keeps while it waits for the client's Finished (private fields, read for this test).
  const held = server.engine as unknown as { handshake: Record<'expectedClientFinished' | 'clientTrafficSecret' | 'serverTrafficSecret', Buffer> }
  const secrets = [held.handshake.expectedClientFinished, held.handshake.clientTrafficSecret, held.handshake.serverTrafficSecret]
  t.ok(secrets.every(s => s.some(b => b !== 0)), 'held, and not zero, before the failure')
  // A record sealed under no key the server knows: bad_record_mac, and the connection fails.
  await server.feed(record(CONTENT_TYPE.applicationData, Buffer.alloc(40, 7)))
  t.same(server.alertsSent, ['bad_record_mac'])
  t.ok(secrets.every(s => s.every(b => b === 0)), 'all zero after it')
})
