// Hostile and broken input on the wire: titus must answer with the exact alert RFC 8446 asks for, close, keep
// serving the next connection, and leave no process behind.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { HandMadeClient13 } from './support/client13.js'
import { createCertSet } from './support/certs.js'
import { startEchoBackend } from './support/backends.js'
import { nodeClient } from './support/clients.js'
import { sleep } from './support/process.js'
import { rawExchange, startRecordProxy, type RawOutcome } from './support/raw.js'
import { openRecord, parseKeyLog, sealRecord, trafficKeys } from './support/record-crypto.js'
import { startTitus } from './support/titus.js'
import {
  ALERT,
  CONTENT_TYPE,
  EXTENSION,
  GROUP_CODE,
  HANDSHAKE_TYPE,
  SUITE_CODE,
  clientHello,
  encryptedExtensions,
  ext,
  handshakeMessage,
  nameOfAlert,
  p256PublicKey,
  parseHandshakeMessages,
  parseRecords,
  parseServerHello,
  record,
  standardExtensions,
  x25519PublicKey,
  type TlsRecord,
} from './support/wire.js'

const certs = createCertSet(t)
const echo = await startEchoBackend(t)
const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.p256.key, cert: certs.leaves.p256.chain })
// Spare connection processes start after the listening line; count once they have settled.
await sleep(1500)
const settledProcessCount = titus.processes().length

// A lone plaintext fatal alert record: 15 03 0x 00 02 02 <description>. The record version is 0303, except that
// titus may answer a hello that offers TLS 1.0/1.1 only with that client's version.
function checkFatalAlert(t: Test, bytes: Buffer, description: number) {
  t.equal(bytes.toString('hex'), `1503${(bytes[2] ?? 3).toString(16).padStart(2, '0')}000202${description.toString(16).padStart(2, '0')}`,
    `a plaintext fatal ${nameOfAlert(description)} alert, nothing else`)
  t.ok(bytes[2]! >= 1 && bytes[2]! <= 3, 'record version 0301 to 0303')
}

async function stillServes(t: Test) {
  const r = await nodeClient(t, { port: titus.port, caFile: certs.caFile })
  t.ok(r.ok, 'titus still serves the next connection', { detail: r.detail })
}

async function expectAlert(t: Test, payload: Buffer | Buffer[], description: number, halfClose = false) {
  const r = await rawExchange(titus.port, payload, { halfClose })
  checkFatalAlert(t, r.bytes, description)
  t.not(r.end, 'timeout', 'and titus closed the connection')
  await stillServes(t)
}

const isServerHello = (received: Buffer) =>
  parseRecords(received).records.some(r => r.type === CONTENT_TYPE.handshake && r.body[0] === HANDSHAKE_TYPE.serverHello)

async function expectServerHello(t: Test, payload: Buffer | Buffer[]) {
  const r = await rawExchange(titus.port, payload, { until: isServerHello })
  t.equal(r.end, 'until', 'titus answered with a ServerHello', { detail: r.bytes.toString('hex') })
  const hello = parseRecords(r.bytes).records.find(rec => rec.type === CONTENT_TYPE.handshake)
  if (hello) t.equal(parseServerHello(parseHandshakeMessages(hello.body)[0]!.body).version, 0x0304, 'for TLS 1.3')
}

const handshakeRecord = (body: Buffer, version = 0x0301) => record(CONTENT_TYPE.handshake, body, version)

// A hand-made client's session with titus: its hello, then, once the server's Finished is in, its Finished and what
// `after` returns; reads until `done` holds for the client, titus closes, or 5 s pass. Rejects if titus's handshake
// does not verify.
function handMadeSession(client: HandMadeClient13, after: (client: HandMadeClient13) => Buffer[], done: (client: HandMadeClient13) => boolean = () => false) {
  return new Promise<RawOutcome['end']>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: titus.port })
    let sentFinished = false
    let ended = false
    const finish = (end: RawOutcome['end'], err?: unknown) => {
      if (ended) return
      ended = true
      clearTimeout(timer)
      socket.destroy()
      if (err) reject(err)
      else resolve(end)
    }
    const timer = setTimeout(() => finish('timeout'), 5000)
    socket.on('connect', () => socket.write(client.helloRecord))
    socket.on('data', (b: Buffer) => {
      try {
        client.receive(b)
      } catch (err) {
        return finish('reset', err)
      }
      if (client.serverFinished && !sentFinished) {
        sentFinished = true
        socket.write(Buffer.concat([client.finishedRecord(), ...after(client)]))
      }
      if (done(client)) finish('until')
    })
    socket.on('end', () => finish('fin'))
    socket.on('error', () => finish('reset'))
  })
}

// After the handshake titus's alerts are protected: the hand-made client reads them.
async function expectAlertAfterHandshake(t: Test, after: (client: HandMadeClient13) => Buffer[], description: number) {
  const client = new HandMadeClient13()
  const end = await handMadeSession(client, after)
  t.ok(client.serverFinished, 'the handshake got as far as our Finished')
  t.equal(nameOfAlert(client.alert), nameOfAlert(description), `a fatal ${nameOfAlert(description)} alert`)
  t.not(end, 'timeout', 'and titus closed the connection')
  await stillServes(t)
}

t.test('record layer', async t => {
  t.test('HTTP instead of TLS: unexpected_message (not a record type)', t =>
    expectAlert(t, Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'), ALERT.unexpectedMessage))

  t.test('a truncated record, then FIN: closed, at most with a decode_error alert', async t => {
    const hello = handshakeRecord(clientHello())
    const r = await rawExchange(titus.port, hello.subarray(0, 60), { halfClose: true })
    t.not(r.end, 'timeout', 'titus closed the connection')
    if (r.bytes.length > 0) checkFatalAlert(t, r.bytes, ALERT.decodeError)
    await stillServes(t)
  })

  t.test('a record of 2^14 + 2048 + 1 bytes: record_overflow', t =>
    expectAlert(t, record(CONTENT_TYPE.handshake, Buffer.alloc(2 ** 14 + 2048 + 1, 1)), ALERT.recordOverflow))

  t.test('a plaintext record of 2^14 + 1 bytes: record_overflow', t =>
    expectAlert(t, record(CONTENT_TYPE.handshake, Buffer.alloc(2 ** 14 + 1, 1)), ALERT.recordOverflow))

  t.test('application data before the handshake: unexpected_message', t =>
    expectAlert(t, record(CONTENT_TYPE.applicationData, Buffer.alloc(40, 7)), ALERT.unexpectedMessage))

  // RFC 8446 5.1: legacy_record_version "MUST be ignored for all purposes".
  for (const version of [0x0300, 0x0302, 0x0304, 0x03ff])
    t.test(`record version 0x${version.toString(16).padStart(4, '0')} is ignored`, t => expectServerHello(t, handshakeRecord(clientHello(), version)))

  t.test('a ClientHello split over many records and writes of 1 to 13 bytes still gets a ServerHello', async t => {
    const hello = clientHello()
    const fragments: Buffer[] = []
    for (let at = 0, size = 1; at < hello.length; at += size, size = (size % 13) + 1) fragments.push(handshakeRecord(hello.subarray(at, at + size)))
    t.ok(fragments.length > 20)
    await expectServerHello(t, fragments)
  })
})

t.test('ClientHello contents', async t => {
  const [versions, groups, sigalgs, keyShare] = standardExtensions() as [Buffer, Buffer, Buffer, Buffer]
  const p256Only = (share: Buffer) => [versions, ext.supportedGroups([GROUP_CODE.secp256r1]), sigalgs, ext.keyShare([{ group: GROUP_CODE.secp256r1, key: share }])]
  const x25519Share = (share: Buffer) => [versions, groups, sigalgs, ext.keyShare([{ group: GROUP_CODE.x25519, key: share }])]

  t.test('the well-formed ClientHello these are made from gets a ServerHello', t => expectServerHello(t, handshakeRecord(clientHello())))

  t.test('a server_name of 256 bytes (no DNS name is that long): unrecognized_name, and titus still serves', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: [ext.serverName('a'.repeat(256)), versions, groups, sigalgs, keyShare] })), ALERT.unrecognizedName))

  t.test('a server_name of 255 bytes is fine', t =>
    expectServerHello(t, handshakeRecord(clientHello({ extensions: [ext.serverName('a'.repeat(255)), versions, groups, sigalgs, keyShare] }))))

  t.test('a duplicate extension: illegal_parameter', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: [versions, groups, sigalgs, groups, keyShare] })), ALERT.illegalParameter))

  t.test('a P-256 key share that is not on the curve: illegal_parameter', t => {
    const point = p256PublicKey()
    point[64] ^= 1 // y + 1 (or - 1): off the curve
    return expectAlert(t, handshakeRecord(clientHello({ extensions: p256Only(point) })), ALERT.illegalParameter)
  })

  t.test('a P-256 key share without the uncompressed-point prefix: illegal_parameter', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: p256Only(p256PublicKey().subarray(1)) })), ALERT.illegalParameter))

  t.test('an X25519 key share of 31 bytes: illegal_parameter', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: x25519Share(x25519PublicKey().subarray(1)) })), ALERT.illegalParameter))

  t.test('an all-zero X25519 public key (all-zero shared secret): illegal_parameter', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: x25519Share(Buffer.alloc(32)) })), ALERT.illegalParameter))

  t.test('TLS 1.3 key_share without signature_algorithms: missing_extension', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: [versions, groups, keyShare] })), ALERT.missingExtension))

  t.test('supported_groups without key_share: missing_extension', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: [versions, groups, sigalgs] })), ALERT.missingExtension))

  t.test('no supported_versions and legacy_version TLS 1.1: protocol_version', t =>
    expectAlert(t, handshakeRecord(clientHello({ legacyVersion: 0x0302, extensions: [groups, sigalgs, keyShare] })), ALERT.protocolVersion))

  // Without supported_versions this is a TLS 1.2 hello, and it offers only TLS 1.3 suites; the `tlsv1.2 no` test
  // below checks protocol_version for the same hello.
  t.test('no supported_versions and only TLS 1.3 suites: a TLS 1.2 hello without a common suite, handshake_failure', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: [groups, sigalgs, keyShare] })), ALERT.handshakeFailure))

  t.test('only TLS 1.2 suites offered in a TLS 1.3 hello: handshake_failure', t =>
    expectAlert(t, handshakeRecord(clientHello({ cipherSuites: [0xc02f, 0xc030], extensions: [versions, groups, sigalgs, keyShare] })), ALERT.handshakeFailure))

  t.test('the suites are fine when one TLS 1.3 suite is among them', t =>
    expectServerHello(t, handshakeRecord(clientHello({ cipherSuites: [0xc02f, SUITE_CODE.TLS_CHACHA20_POLY1305_SHA256] }))))

  t.test('pre_shared_key not the last extension: illegal_parameter', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: [versions, groups, sigalgs, ext.pskKeyExchangeModes(), ext.preSharedKey(), keyShare] })), ALERT.illegalParameter))

  t.test('pre_shared_key without psk_key_exchange_modes: missing_extension', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: [versions, groups, sigalgs, keyShare, ext.preSharedKey()] })), ALERT.missingExtension))

  t.test('two bytes after the extensions: decode_error', t => {
    const hello = clientHello()
    return expectAlert(t, handshakeRecord(handshakeMessage(HANDSHAKE_TYPE.clientHello, Buffer.concat([hello.subarray(4), Buffer.of(0, 0)]))), ALERT.decodeError)
  })

  const ffdhe2048Only = (share: Buffer) => [versions, ext.supportedGroups([GROUP_CODE.ffdhe2048]), sigalgs, ext.keyShare([{ group: GROUP_CODE.ffdhe2048, key: share }])]
  t.test('an ffdhe2048 key share of 255 bytes: illegal_parameter', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: ffdhe2048Only(randomBytes(255)) })), ALERT.illegalParameter))

  t.test('an ffdhe2048 key share of value 1: illegal_parameter', t => {
    const one = Buffer.alloc(256)
    one[255] = 1
    return expectAlert(t, handshakeRecord(clientHello({ extensions: ffdhe2048Only(one) })), ALERT.illegalParameter)
  })

  t.test('the control: a real ffdhe2048 key share gets a ServerHello', t => {
    // 2^255 mod p, well inside (1, p - 1).
    const share = Buffer.alloc(256)
    share[224] = 0x80
    return expectServerHello(t, handshakeRecord(clientHello({ extensions: ffdhe2048Only(share) })))
  })

  t.test('a key share for a group not in supported_groups: illegal_parameter', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: [versions, groups, sigalgs, ext.keyShare([{ group: GROUP_CODE.secp256r1, key: p256PublicKey() }])] })), ALERT.illegalParameter))

  t.test('supported_versions with no version titus knows: protocol_version', t =>
    expectAlert(t, handshakeRecord(clientHello({ extensions: [ext.supportedVersions([0x0305, 0x7f1c, 0x0302]), groups, sigalgs, keyShare] })), ALERT.protocolVersion))

  t.test('a first handshake message of unknown type 99: unexpected_message', t =>
    expectAlert(t, handshakeRecord(handshakeMessage(99, clientHello().subarray(4))), ALERT.unexpectedMessage))

  t.test('a handshake message header claiming 64 KiB + 1 bytes: decode_error, before the body arrives', t =>
    expectAlert(t, handshakeRecord(Buffer.concat([Buffer.of(HANDSHAKE_TYPE.clientHello, 0x01, 0x00, 0x01), clientHello().subarray(4)])), ALERT.decodeError))

  t.test('record_size_limit below 64: illegal_parameter', t =>
    expectAlert(t, handshakeRecord(new HandMadeClient13([ext.recordSizeLimit(63)]).hello), ALERT.illegalParameter))
})

t.test('record_size_limit (RFC 8449) with a hand-made client: only when offered, and then obeyed', async t => {
  const plain = new HandMadeClient13()
  const end = await handMadeSession(plain, c => [c.seal(CONTENT_TYPE.applicationData, Buffer.from('ping'))], c => Buffer.concat(c.applicationData).length >= 4)
  t.equal(end, 'until', 'handshake and echo through the backend')
  t.equal(Buffer.concat(plain.applicationData).toString(), 'ping')
  const ee = plain.messages.find(m => m.type === HANDSHAKE_TYPE.encryptedExtensions)
  t.notOk(ee && encryptedExtensions(ee.body).has(EXTENSION.recordSizeLimit), 'not offered: not in EncryptedExtensions')

  const limit = 256
  const data = randomBytes(5000)
  const limited = new HandMadeClient13([ext.recordSizeLimit(limit)])
  const limitedEnd = await handMadeSession(limited, c => [c.seal(CONTENT_TYPE.applicationData, data)], c => Buffer.concat(c.applicationData).length >= data.length)
  t.equal(limitedEnd, 'until', 'handshake and echo of 5000 bytes through the backend')
  t.same(Buffer.concat(limited.applicationData), data, 'byte-exact')
  const eeLimited = limited.messages.find(m => m.type === HANDSHAKE_TYPE.encryptedExtensions)
  t.equal(eeLimited && encryptedExtensions(eeLimited.body).get(EXTENSION.recordSizeLimit)?.readUInt16BE(0), 2 ** 14 + 1, 'offered: titus answers with 2^14 + 1')
  // RFC 8449 §4: in TLS 1.3 the limit covers the inner plaintext and its content type, i.e. the record less its 16-byte tag.
  const protectedRecords = limited.serverRecords.filter(r => r.type === CONTENT_TYPE.applicationData)
  t.ok(protectedRecords.length >= data.length / limit, `${protectedRecords.length} protected records`)
  t.ok(protectedRecords.every(r => r.body.length - 16 <= limit), `none over ${limit}: the largest holds ${Math.max(...protectedRecords.map(r => r.body.length - 16))}`)
})

t.test('after the handshake', async t => {
  t.test('a record that does not authenticate: bad_record_mac', t =>
    expectAlertAfterHandshake(t, () => [record(CONTENT_TYPE.applicationData, randomBytes(40))], ALERT.badRecordMac))

  t.test('a KeyUpdate with request_update 2: illegal_parameter', t =>
    expectAlertAfterHandshake(t, c => [c.seal(CONTENT_TYPE.handshake, handshakeMessage(HANDSHAKE_TYPE.keyUpdate, Buffer.of(2)))], ALERT.illegalParameter))

  t.test('a change_cipher_spec: unexpected_message', t =>
    expectAlertAfterHandshake(t, () => [record(CONTENT_TYPE.changeCipherSpec, Buffer.of(1))], ALERT.unexpectedMessage))
})

t.test('with tlsv1.2 no, a hello without supported_versions gets protocol_version', async t => {
  const strict13 = await startTitus(t, { backendPort: echo.port, key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain, args: ['--tlsv1.2', 'no'] })
  const [, groups, sigalgs, keyShare] = standardExtensions() as [Buffer, Buffer, Buffer, Buffer]
  const r = await rawExchange(strict13.port, handshakeRecord(clientHello({ extensions: [groups, sigalgs, keyShare] })))
  checkFatalAlert(t, r.bytes, ALERT.protocolVersion)
  t.not(r.end, 'timeout')
})

t.test('real client through a record-rewriting man in the middle', async t => {
  t.test('its ClientHello re-fragmented into records of 1 to 9 bytes: full handshake and echo', async t => {
    let fragmentedRecords = 0
    const proxy = await startRecordProxy(t, titus.port, (r: TlsRecord) => {
      if (r.type !== CONTENT_TYPE.handshake) return record(r.type, r.body, r.version)
      const pieces: Buffer[] = []
      for (let at = 0, size = 1; at < r.body.length; at += size, size = (size % 9) + 1) pieces.push(record(r.type, r.body.subarray(at, at + size), r.version))
      fragmentedRecords += pieces.length
      return Buffer.concat(pieces)
    })
    const r = await nodeClient(t, { port: proxy.port, caFile: certs.caFile })
    t.ok(r.ok, 'handshake and byte-exact echo', { detail: r.detail })
    t.ok(fragmentedRecords > 20, `the hello went as ${fragmentedRecords} records`)
  })

  t.test("one bit flipped in the client's encrypted Finished record: bad_record_mac", async t => {
    let flipped = false
    const proxy = await startRecordProxy(t, titus.port, (r: TlsRecord) => {
      const body = Buffer.from(r.body)
      if (r.type === CONTENT_TYPE.applicationData && !flipped) {
        flipped = true
        body[body.length - 1] ^= 0x01
      }
      return record(r.type, body, r.version)
    })
    const r = await nodeClient(t, { port: proxy.port, caFile: certs.caFile, suite: 'TLS_AES_128_GCM_SHA256' })
    t.ok(flipped, 'the Finished record went through the proxy')
    t.notOk(r.ok)
    t.equal(r.alert, ALERT.badRecordMac, 'the client got bad_record_mac', { detail: r.detail })
    await stillServes(t)
  })

  t.test("a client Finished with one wrong bit in verify_data, sealed again with the client's keys: decrypt_error", async t => {
    let keyLog = ''
    let changed = false
    const proxy = await startRecordProxy(t, titus.port, (r: TlsRecord) => {
      if (r.type !== CONTENT_TYPE.applicationData || changed) return record(r.type, r.body, r.version)
      changed = true
      // The client's first protected record is its Finished, the first under its handshake traffic key.
      const keys = trafficKeys(parseKeyLog(keyLog).get('CLIENT_HANDSHAKE_TRAFFIC_SECRET')!)
      const inner = openRecord(keys, 0, r.body)
      t.equal(inner.type, CONTENT_TYPE.handshake)
      t.equal(inner.content[0], HANDSHAKE_TYPE.finished, 'the record holds the Finished message')
      const finished = Buffer.from(inner.content)
      finished[finished.length - 1] ^= 0x80
      return sealRecord(keys, 0, inner.type, finished)
    })
    const r = await nodeClient(t, { port: proxy.port, caFile: certs.caFile, suite: 'TLS_AES_128_GCM_SHA256', onKeylog: line => (keyLog += line) })
    t.ok(changed, 'the Finished record went through the proxy')
    t.notOk(r.ok)
    t.equal(r.alert, ALERT.decryptError, 'the client got decrypt_error', { detail: r.detail })
    await stillServes(t)
  })
})

t.test('connection processes of broken connections are gone', async t => {
  let count = titus.processes().length
  for (let waited = 0; count > settledProcessCount && waited < 5000; waited += 100) {
    await sleep(100)
    count = titus.processes().length
  }
  t.ok(count <= settledProcessCount, `${count} titus processes now, ${settledProcessCount} after start-up`)
})
