// Hostile and broken TLS 1.2 input: a hand-made client (support/tls12-client.ts, written from the RFCs) runs the
// handshake step by step and breaks one step; titus must answer with the exact alert, close, keep serving the next
// connection, and leave no process behind. A positive control first proves the hand-made client right.
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { createCertSet } from './support/certs.js'
import { startEchoBackend } from './support/backends.js'
import { nodeClient } from './support/clients.js'
import { sleep } from './support/process.js'
import { rawExchange } from './support/raw.js'
import { startTitus } from './support/titus.js'
import { TLS12_AES128_SUITES, Tls12Client, type Ending } from './support/tls12-client.js'
import {
  ALERT,
  CONTENT_TYPE,
  GROUP_CODE,
  HANDSHAKE_TYPE,
  clientHello,
  ext,
  handshakeMessage,
  nameOfAlert,
  parseRecords,
  record,
  u8,
  vec8,
  type ServerKeyExchangeParams,
} from './support/wire.js'

const certs = createCertSet(t)
const echo = await startEchoBackend(t)
// dhgroup: RFC 3526's 3072-bit group for clients that offer no RFC 7919 group, ffdhe2048 for those that do.
const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain, args: ['--dhgroup', '15:ffdhe2048'] })
await sleep(1500)
const settledProcessCount = titus.processes().length

const { ECDHE_RSA, DHE_RSA } = TLS12_AES128_SUITES
type KeyExchange = 'x25519' | 'secp256r1' | 'ffdhe2048' | 'configured DH'

// A TLS 1.2 ClientHello as a modern client sends it (EMS, renegotiation_info, uncompressed points), for one key exchange.
function hello12(kx: KeyExchange, extra: { cipherSuites?: number[]; extensions?: Buffer[] } = {}): Buffer {
  const dhe = kx === 'ffdhe2048' || kx === 'configured DH'
  // No RFC 7919 group offered: titus uses its configured parameters (RFC 7919 4).
  const groups = kx === 'configured DH' ? [GROUP_CODE.x25519] : [GROUP_CODE[kx]]
  return clientHello({
    cipherSuites: extra.cipherSuites ?? [dhe ? DHE_RSA : ECDHE_RSA],
    extensions: extra.extensions ?? [ext.supportedGroups(groups), ext.ecPointFormats(), ext.signatureAlgorithms(), ext.extendedMasterSecret(), ext.renegotiationInfo()],
  })
}

// Connects and runs the handshake up to the server's ServerHelloDone.
async function afterHello(t: Test, kx: KeyExchange = 'x25519', helloRecordVersion?: number) {
  const client = await Tls12Client.connect(t, titus.port)
  const flight = await client.hello(hello12(kx), helloRecordVersion)
  return { client, flight }
}

// Connects and completes the handshake (server Finished verified).
async function handshaken(t: Test, kx: KeyExchange = 'x25519', helloRecordVersion?: number) {
  const { client, flight } = await afterHello(t, kx, helloRecordVersion)
  client.send(client.clientKeyExchange(), client.changeCipherSpec(), client.finished())
  await client.serverFinished()
  return { client, flight }
}

const alertHex = (description: number) => `150303000202${description.toString(16).padStart(2, '0')}`

async function stillServes(t: Test) {
  const r = await nodeClient(t, { port: titus.port, caFile: certs.caFile, tls12: true })
  t.ok(r.ok, 'titus still serves the next connection', { detail: r.detail })
}

// The server's last words are one plaintext fatal alert, then it closes.
async function checkAlert(t: Test, ending: Ending, description: number) {
  t.equal(ending.bytes.toString('hex'), alertHex(description), `a plaintext fatal ${nameOfAlert(description)} alert, nothing else`)
  t.not(ending.end, 'timeout', 'and titus closed the connection')
  await stillServes(t)
}

async function sendExpectingAlert(t: Test, client: Tls12Client, records: Buffer[], description: number) {
  client.send(...records)
  await checkAlert(t, await client.ending(), description)
}

// After the handshake the alert is sealed under the server's key.
async function checkSealedAlert(t: Test, client: Tls12Client, ending: Ending, description: number) {
  const { records, rest } = parseRecords(ending.bytes)
  t.equal(records.length, 1, 'one record', { detail: ending.bytes.toString('hex') })
  t.equal(rest.length, 0)
  t.equal(records[0]?.type, CONTENT_TYPE.alert, 'an alert record')
  if (records[0]?.type === CONTENT_TYPE.alert) {
    t.equal(client.openServerRecord(records[0]).toString('hex'), `02${description.toString(16).padStart(2, '0')}`, `sealed fatal ${nameOfAlert(description)}`)
  }
  t.not(ending.end, 'timeout', 'and titus closed the connection')
  await stillServes(t)
}

t.test('positive control: the hand-made client completes handshakes and gets its data back byte-exact', async t => {
  for (const [kx, helloRecordVersion] of [['x25519', 0x0301], ['secp256r1', 0x0300], ['ffdhe2048', 0x0303], ['configured DH', 0x0301]] as const) {
    const { client, flight } = await handshaken(t, kx, helloRecordVersion)
    t.ok(flight.extendedMasterSecret, `${kx}: extended master secret negotiated`)
    if (flight.params.kind === 'DHE') t.equal(flight.params.p.length * 8, kx === 'ffdhe2048' ? 2048 : 3072, `${kx}: prime size`)
    const data = randomBytes(20000) // more than one record each way
    client.send(client.seal(CONTENT_TYPE.applicationData, data.subarray(0, 16384)), client.seal(CONTENT_TYPE.applicationData, data.subarray(16384)))
    const echoed = await client.applicationData(data.length)
    t.ok(echoed.equals(data), `${kx} (ClientHello record 0x${helloRecordVersion.toString(16)}): server Finished verified, ${echoed.length} bytes echoed byte-exact`)
    client.send(client.seal(CONTENT_TYPE.alert, Buffer.of(1, 0)))
    const ending = await client.ending()
    t.not(ending.end, 'timeout', 'close_notify ends the connection')
  }
})

t.test('malformed ClientKeyExchange: decode_error', async t => {
  const cases: Array<[string, KeyExchange, (own: Buffer) => Buffer]> = [
    ['a trailing byte', 'x25519', own => Buffer.concat([vec8(own), u8(0)])],
    ['an inner length one too long', 'x25519', own => Buffer.concat([u8(own.length + 1), own])],
    ['an empty body', 'x25519', () => Buffer.alloc(0)],
    ['an empty public value', 'x25519', () => vec8()],
    ['DHE with an 8-bit length', 'ffdhe2048', own => vec8(own.subarray(0, 200))],
  ]
  for (const [name, kx, body] of cases) {
    t.test(`${name} (${kx})`, async t => {
      const { client } = await afterHello(t, kx)
      await sendExpectingAlert(t, client, [client.clientKeyExchange({ body: body(client.publicValue) })], ALERT.decodeError)
    })
  }
})

// The values RFC 7919 5.1 and RFC 5246 8.1.2 rule out (1 < Yc < p - 1, no longer than p), from the server's prime.
const BAD_DH_VALUES: Record<string, (p: Buffer) => Buffer> = {
  '0': () => Buffer.of(0),
  '1': () => Buffer.of(1),
  'p - 1': p => Buffer.concat([p.subarray(0, -1), u8(p[p.length - 1]! - 1)]), // p is odd
  p: p => Buffer.from(p),
  'longer than p': p => Buffer.concat([u8(1), p]),
}

t.test('DH public values out of range: illegal_parameter', async t => {
  for (const kx of ['ffdhe2048', 'configured DH'] as const) {
    for (const [name, value] of Object.entries(BAD_DH_VALUES)) {
      t.test(`${name} (${kx})`, async t => {
        const { client, flight } = await afterHello(t, kx)
        const p = (flight.params as Extract<ServerKeyExchangeParams, { kind: 'DHE' }>).p
        await sendExpectingAlert(t, client, [client.clientKeyExchange({ publicValue: value(p) })], ALERT.illegalParameter)
      })
    }
  }
})

t.test('bad EC points: illegal_parameter', async t => {
  const cases: Array<[string, KeyExchange, (own: Buffer) => Buffer]> = [
    ['a P-256 point off the curve', 'secp256r1', own => {
      const point = Buffer.from(own)
      point[64] ^= 1
      return point
    }],
    ['a compressed P-256 point', 'secp256r1', own => Buffer.concat([u8(2 + (own[64]! & 1)), own.subarray(1, 33)])],
    ['the P-256 point at infinity', 'secp256r1', () => Buffer.of(0)],
    ['an x25519 share of 31 bytes', 'x25519', own => own.subarray(1)],
    ['an all-zero x25519 share', 'x25519', () => Buffer.alloc(32)],
  ]
  for (const [name, kx, value] of cases) {
    t.test(name, async t => {
      const { client } = await afterHello(t, kx)
      await sendExpectingAlert(t, client, [client.clientKeyExchange({ publicValue: value(client.publicValue) })], ALERT.illegalParameter)
    })
  }
})

t.test('Finished', async t => {
  t.test('one bit wrong in verify_data: decrypt_error', async t => {
    const { client } = await afterHello(t)
    await sendExpectingAlert(t, client, [client.clientKeyExchange(), client.changeCipherSpec(), client.finished({ flipBit: true })], ALERT.decryptError)
  })
  t.test('13 bytes of verify_data: decode_error', async t => {
    const { client } = await afterHello(t)
    await sendExpectingAlert(t, client, [client.clientKeyExchange(), client.changeCipherSpec(), client.finished({ length: 13 })], ALERT.decodeError)
  })
})

t.test('messages out of order: unexpected_message', async t => {
  const cases: Array<[string, (client: Tls12Client) => Buffer[]]> = [
    ['change_cipher_spec before ClientKeyExchange', c => [c.changeCipherSpec()]],
    ['change_cipher_spec twice', c => [c.clientKeyExchange(), c.changeCipherSpec(), c.changeCipherSpec()]],
    ['Finished without change_cipher_spec', c => [c.clientKeyExchange(), c.finished({ plaintext: true })]],
    ['change_cipher_spec with body 02', c => [c.clientKeyExchange(), c.changeCipherSpec(Buffer.of(2))]],
    ['change_cipher_spec of two bytes', c => [c.clientKeyExchange(), c.changeCipherSpec(Buffer.of(1, 1))]],
    ['application data before Finished', c => [c.clientKeyExchange(), c.changeCipherSpec(), c.seal(CONTENT_TYPE.applicationData, Buffer.from('early'))]],
    ['Certificate instead of ClientKeyExchange', () => [record(CONTENT_TYPE.handshake, handshakeMessage(HANDSHAKE_TYPE.certificate, Buffer.alloc(3)))]],
  ]
  for (const [name, records] of cases) {
    t.test(name, async t => {
      const { client } = await afterHello(t)
      await sendExpectingAlert(t, client, records(client), ALERT.unexpectedMessage)
    })
  }
  t.test('a HelloRequest after the handshake (a server-to-client message)', async t => {
    const { client } = await handshaken(t)
    client.send(client.seal(CONTENT_TYPE.handshake, handshakeMessage(HANDSHAKE_TYPE.helloRequest, Buffer.alloc(0))))
    await checkSealedAlert(t, client, await client.ending(), ALERT.unexpectedMessage)
  })
})

t.test('ClientHello contents', async t => {
  const base = () => [ext.supportedGroups([GROUP_CODE.x25519]), ext.signatureAlgorithms(), ext.extendedMasterSecret()]
  const cases: Array<[string, Buffer, number]> = [
    ['TLS_FALLBACK_SCSV in a TLS 1.2 hello while TLS 1.3 is on: inappropriate_fallback', hello12('x25519', { cipherSuites: [ECDHE_RSA, 0x5600] }), ALERT.inappropriateFallback],
    ['a non-empty renegotiation_info: handshake_failure', hello12('x25519', { extensions: [...base(), ext.renegotiationInfo(Buffer.alloc(12, 1))] }), ALERT.handshakeFailure],
    ['no signature_algorithms: handshake_failure', hello12('x25519', { extensions: [ext.supportedGroups([GROUP_CODE.x25519]), ext.extendedMasterSecret()] }), ALERT.handshakeFailure],
    ['ec_point_formats without uncompressed: illegal_parameter', hello12('x25519', { extensions: [...base(), ext.ecPointFormats([1, 2])] }), ALERT.illegalParameter],
    ['no null compression: decode_error', clientHello({ cipherSuites: [ECDHE_RSA], compressionMethods: [1], extensions: base() }), ALERT.decodeError],
  ]
  for (const [name, hello, description] of cases) {
    t.test(name, async t => checkAlert(t, await rawExchange(titus.port, record(CONTENT_TYPE.handshake, hello, 0x0301)), description))
  }
  t.test('the hello those are made from gets the server flight', async t => {
    const client = await Tls12Client.connect(t, titus.port)
    const flight = await client.hello(hello12('x25519', { extensions: base() }))
    t.equal(flight.hello.cipherSuite, ECDHE_RSA)
    await client.ending(0)
  })
})

// RFC 5246 6.2.1 and Appendix E.1: after the ServerHello every record carries the negotiated version, 0x0303.
t.test('a record version other than 0x0303 after the ServerHello: protocol_version', async t => {
  for (const version of [0x0300, 0x0301, 0x03ff]) {
    const hex = `0x${version.toString(16).padStart(4, '0')}`
    t.test(`ClientKeyExchange record ${hex}`, async t => {
      const { client } = await afterHello(t)
      await sendExpectingAlert(t, client, [client.clientKeyExchange({ recordVersion: version })], ALERT.protocolVersion)
    })
    t.test(`change_cipher_spec record ${hex}`, async t => {
      const { client } = await afterHello(t)
      await sendExpectingAlert(t, client, [client.clientKeyExchange(), client.changeCipherSpec(Buffer.of(1), version)], ALERT.protocolVersion)
    })
    // Sealed with that version in the additional data too, as a sender that uses it throughout would.
    t.test(`encrypted Finished record ${hex}`, async t => {
      const { client } = await afterHello(t)
      await sendExpectingAlert(t, client, [client.clientKeyExchange(), client.changeCipherSpec(), client.finished({ recordVersion: version })], ALERT.protocolVersion)
    })
  }
  t.test('application data record 0x0301 after the handshake', async t => {
    const { client } = await handshaken(t)
    client.send(client.seal(CONTENT_TYPE.applicationData, Buffer.from('hello'), 0x0301))
    await checkSealedAlert(t, client, await client.ending(), ALERT.protocolVersion)
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
