// Known-answer tests from the TLS 1.3 example handshake traces (RFC 8448; the copy in ../shared/reference is
// its last draft, draft-ietf-tls-tls13-vectors, whose traces were generated anew and so differ in value from the
// RFC's, with the same structure) against the sans-IO engine's key schedule, transcript, Finished computation and
// record protection. The bytes come from the trace text itself, parsed at test time: no hand-copied constants.
import t, { type Test } from 'tap'
import { createECDH, createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Reader } from '../src/tls/codec.js'
import { CipherSuite, ContentType, HandshakeType, NamedGroup, TLS13_SUITES, type Tls13SuiteSpec } from '../src/tls/constants.js'
import { KeySchedule, Transcript, finishedVerifyData, trafficKeys, type TrafficKeys } from '../src/tls/key-schedule.js'
import { HELLO_RETRY_REQUEST_RANDOM, certificate13, finished, parseClientHello } from '../src/tls/messages.js'
import { RecordLayer, RecordProtection, type InboundRecord } from '../src/tls/record.js'

// shared/ lies beside the repository, in development and in CI alike.
const TRACE_FILE = process.env.RFC8448_TRACES ?? fileURLToPath(new URL('../../shared/reference/rfc8448-tls13-traces.txt', import.meta.url))

// Every RFC page ends in a footer and starts with a header; drop both so a hex block that crosses a page
// stays one block.
// A checkout without shared/ beside it (CI always has it) skips these tests, saying where it looked.
const traceMissing = !existsSync(TRACE_FILE) && `no trace text at ${TRACE_FILE} (shared/ lies beside the repository; or set RFC8448_TRACES)`
const traceLines = (traceMissing ? '' : readFileSync(TRACE_FILE, 'latin1'))
  .split(/\r?\n/)
  .filter(line => !/^(\f|Thomson\s+Expires|Internet-Draft\s+TLS 1\.3 Traces)/.test(line))

const HEX_LINE = /^\s+[0-9a-f]{2}( [0-9a-f]{2})*\s*$/
const FIELD_LINE = /^\s+(\S.*?) \((\d+) octets\):\s*(.*)$/

/** One numbered section of RFC 8448; looks up a field of a step, e.g. `secret` of `{server}  extract secret "early":`. */
class Trace {
  private readonly lines: string[]

  constructor(readonly title: string) {
    // The table of contents is indented, so only the real heading matches at column 0.
    const start = traceLines.indexOf(title)
    if (start === -1) throw new Error(`RFC 8448: section ${JSON.stringify(title)} not found in ${TRACE_FILE}`)
    const end = traceLines.findIndex((line, i) => i > start && /^\d+\.  \S/.test(line))
    this.lines = traceLines.slice(start, end === -1 ? undefined : end)
  }

  /** The bytes of `field` in the `nth` step whose heading line is exactly `step`; throws if absent or short. */
  get(step: string, field: string, nth = 0): Buffer {
    const where = `RFC 8448 ${this.title}: ${JSON.stringify(step)} #${nth}`
    const starts = this.lines.flatMap((line, i) => (line.trim() === step ? [i] : []))
    if (starts.length <= nth) throw new Error(`${where}: step not found (${starts.length} occurrences)`)
    for (let i = starts[nth] + 1; i < this.lines.length && !this.lines[i].trimStart().startsWith('{'); i++) {
      const m = FIELD_LINE.exec(this.lines[i])
      if (!m || m[1] !== field) continue
      let hex = m[3] === '(empty)' ? '' : m[3]
      if (hex !== '' && !HEX_LINE.test(` ${hex}`)) throw new Error(`${where}: ${field} is not hex: ${hex}`)
      // Continuation lines are pure hex; blank lines (page breaks) may sit in between.
      for (let j = i + 1; j < this.lines.length; j++) {
        if (this.lines[j].trim() === '') continue
        if (!HEX_LINE.test(this.lines[j])) break
        hex += ` ${this.lines[j].trim()}`
      }
      const bytes = Buffer.from(hex.replace(/\s+/g, ''), 'hex')
      if (bytes.length !== Number(m[2])) throw new Error(`${where}: ${field} has ${bytes.length} octets, expected ${m[2]}`)
      return bytes
    }
    throw new Error(`${where}: field ${JSON.stringify(field)} not found`)
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

// Fixed DER prefixes turn the trace's raw X25519 keys into KeyObjects (RFC 8410).
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')
const x25519Private = (raw: Buffer): KeyObject =>
  createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' })
const x25519Public = (raw: Buffer): KeyObject =>
  createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' })

/** The suite the trace's ServerHello selected, as the engine knows it. */
function negotiatedSuite(t: Test, serverHello: Buffer): Tls13SuiteSpec {
  const r = new Reader(serverHello.subarray(4))
  r.u16()
  r.bytes(32)
  r.vector(1)
  const code = r.u16()
  t.equal(code, CipherSuite.TLS_AES_128_GCM_SHA256, 'trace negotiates TLS_AES_128_GCM_SHA256')
  const suite = TLS13_SUITES.get(code)
  if (!suite) throw new Error(`unknown suite 0x${code.toString(16)}`)
  return suite
}

interface RecordStep {
  name: string
  step: string
  nth: number
  type: number
}

interface HandshakeTrace {
  trace: Trace
  /** Which occurrence of the ClientHello / ServerHello steps is the one the keys derive from. */
  helloIndex: number
  /** Adds everything before the final ServerHello (ClientHello; or ClientHello1, HRR, ClientHello2). */
  startTranscript(transcript: Transcript, hashName: Tls13SuiteSpec['hash']): void
  /** Plaintext server records before the encrypted flight (ServerHello, and the HRR before it). */
  plaintextServerRecords: number
  /** Client handshake records before its Finished (the ClientHellos). */
  plaintextClientRecords: number
  serverApplicationRecords: RecordStep[]
  clientApplicationRecords: RecordStep[]
}

const SERVER_HANDSHAKE_RECORD = '{server}  send handshake record:'
const CLIENT_HANDSHAKE_RECORD = '{client}  send handshake record:'
const C_HS_TRAFFIC = '{server}  derive secret "tls13 c hs traffic":'
const C_AP_TRAFFIC = '{server}  derive secret "tls13 c ap traffic":'
const RES_MASTER = '{client}  derive secret "tls13 res master":'

/** A record as RecordLayer.next() returns it, reduced to what the trace states. */
const seen = (record: InboundRecord | undefined) =>
  record && { type: record.type, protected: record.protected, content: hex(record.content) }

/** Key schedule, traffic keys, Finished and record protection for one trace; the flow is the same for both. */
function checkHandshake(t: Test, spec: HandshakeTrace): void {
  const { trace } = spec
  // Computed bytes against the trace's, hex-encoded so a mismatch diffs readably.
  const expect = (actual: Uint8Array, step: string, field: string, label: string, nth = 0) =>
    t.equal(hex(actual), hex(trace.get(step, field, nth)), label)
  const message = (role: 'client' | 'server', name: string, nth = 0) =>
    trace.get(`{${role}}  construct a ${name} handshake message`, name, nth)
  const clientHello = message('client', 'ClientHello', spec.helloIndex)
  const serverHello = message('server', 'ServerHello', spec.helloIndex)
  const encryptedExtensions = message('server', 'EncryptedExtensions')
  const certificate = message('server', 'Certificate')
  const certificateVerify = message('server', 'CertificateVerify')
  const serverFinished = message('server', 'Finished')
  const clientFinished = message('client', 'Finished')
  const suite = negotiatedSuite(t, serverHello)
  const h = suite.hash

  // Key schedule (RFC 8446 §7.1), with transcript hashes from the project's Transcript.
  const transcript = new Transcript()
  spec.startTranscript(transcript, h)
  transcript.add(serverHello)
  const helloHash = transcript.hash(h)
  expect(helloHash, C_HS_TRAFFIC, 'hash', 'transcript hash ClientHello..ServerHello')

  const schedule = new KeySchedule(h)
  expect(schedule.earlySecret(), '{server}  extract secret "early":', 'secret', 'early secret')
  const hs = schedule.handshakeSecrets(trace.get('{server}  extract secret "handshake":', 'IKM'), helloHash)
  expect(hs.handshakeSecret, '{server}  extract secret "handshake":', 'secret', 'handshake secret')
  expect(hs.clientHandshakeTrafficSecret, C_HS_TRAFFIC, 'expanded', 'client handshake traffic secret')
  expect(hs.serverHandshakeTrafficSecret, '{server}  derive secret "tls13 s hs traffic":', 'expanded', 'server handshake traffic secret')

  // Server Finished covers ClientHello..CertificateVerify (RFC 8446 §4.4.4).
  transcript.add(encryptedExtensions)
  transcript.add(certificate)
  transcript.add(certificateVerify)
  const serverVerifyData = finishedVerifyData(h, hs.serverHandshakeTrafficSecret, transcript.hash(h))
  expect(serverVerifyData, '{server}  calculate finished "tls13 finished":', 'finished', 'server Finished verify_data')
  t.equal(hex(finished(serverVerifyData)), hex(serverFinished), 'server Finished message encoding')

  transcript.add(serverFinished)
  const serverFinishedHash = transcript.hash(h)
  expect(serverFinishedHash, C_AP_TRAFFIC, 'hash', 'transcript hash ClientHello..server Finished')
  const ap = schedule.applicationSecrets(hs.handshakeSecret, serverFinishedHash)
  expect(ap.masterSecret, '{server}  extract secret "master":', 'secret', 'master secret')
  expect(ap.clientApplicationTrafficSecret, C_AP_TRAFFIC, 'expanded', 'client application traffic secret')
  expect(ap.serverApplicationTrafficSecret, '{server}  derive secret "tls13 s ap traffic":', 'expanded', 'server application secret')
  expect(ap.exporterMasterSecret, '{server}  derive secret "tls13 exp master":', 'expanded', 'exporter master secret')

  // Client Finished covers ClientHello..server Finished.
  const clientVerifyData = finishedVerifyData(h, hs.clientHandshakeTrafficSecret, serverFinishedHash)
  expect(clientVerifyData, '{client}  calculate finished "tls13 finished":', 'finished', 'client Finished verify_data')
  t.equal(hex(finished(clientVerifyData)), hex(clientFinished), 'client Finished message encoding')

  transcript.add(clientFinished)
  const clientFinishedHash = transcript.hash(h)
  expect(clientFinishedHash, RES_MASTER, 'hash', 'transcript hash ClientHello..client Finished')
  expect(schedule.resumptionMasterSecret(ap.masterSecret, clientFinishedHash), RES_MASTER, 'expanded', 'resumption master secret')

  // Traffic keys (RFC 8446 §7.3).
  const keys = (label: string, secret: Buffer, step: string): TrafficKeys => {
    const derived = trafficKeys(h, suite.aead, secret)
    expect(derived.key, step, 'key expanded', `${label} key`)
    expect(derived.iv, step, 'iv expanded', `${label} iv`)
    return derived
  }
  const keyStep = (role: string, direction: string, data: string) => `{${role}}  derive ${direction} traffic keys for ${data} data:`
  const serverHandshake = keys('server handshake', hs.serverHandshakeTrafficSecret, keyStep('server', 'write', 'handshake'))
  const clientHandshake = keys('client handshake', hs.clientHandshakeTrafficSecret, keyStep('server', 'read', 'handshake'))
  const serverApplication = keys('server application', ap.serverApplicationTrafficSecret, keyStep('server', 'write', 'application'))
  const clientApplication = keys('client application', ap.clientApplicationTrafficSecret, keyStep('client', 'write', 'application'))
  const protect = (k: TrafficKeys) => new RecordProtection(suite.aead, k.key, k.iv)

  // Server side: plaintext hellos, then the protected flight, then application-phase records; every record
  // must come out byte-for-byte as in the trace (RFC 8446 §5.2: no padding, outer type application_data).
  const server = new RecordLayer()
  const sealed = () => Buffer.concat(server.takeOutput())
  for (let nth = 0; nth < spec.plaintextServerRecords; nth++) {
    server.write(ContentType.handshake, trace.get(SERVER_HANDSHAKE_RECORD, 'payload', nth))
    expect(sealed(), SERVER_HANDSHAKE_RECORD, 'complete record', `server plaintext record #${nth}`, nth)
  }
  const flightIndex = spec.plaintextServerRecords
  const flight = Buffer.concat([encryptedExtensions, certificate, certificateVerify, serverFinished])
  expect(flight, SERVER_HANDSHAKE_RECORD, 'payload', 'server flight is EncryptedExtensions..Finished', flightIndex)
  server.setWriteProtection(protect(serverHandshake))
  server.write(ContentType.handshake, flight)
  expect(sealed(), SERVER_HANDSHAKE_RECORD, 'complete record', 'sealed server handshake flight', flightIndex)
  server.setWriteProtection(protect(serverApplication))
  for (const { name, step, nth, type } of spec.serverApplicationRecords) {
    server.write(type, trace.get(step, 'payload', nth))
    expect(sealed(), step, 'complete record', `sealed server ${name} record`, nth)
  }

  // Client side: what a server reads. One push per phase, so framing of back-to-back records is covered too.
  const client = new RecordLayer()
  const finishedIndex = spec.plaintextClientRecords
  for (let nth = 0; nth < finishedIndex; nth++) client.push(trace.get(CLIENT_HANDSHAKE_RECORD, 'complete record', nth))
  for (let nth = 0; nth < finishedIndex; nth++) {
    const payload = hex(trace.get(CLIENT_HANDSHAKE_RECORD, 'payload', nth))
    t.same(seen(client.next()), { type: ContentType.handshake, protected: false, content: payload }, `client plaintext record #${nth}`)
  }
  expect(clientHello, CLIENT_HANDSHAKE_RECORD, 'payload', 'last plaintext client record carries the ClientHello', finishedIndex - 1)
  client.setReadProtection(protect(clientHandshake))
  client.push(trace.get(CLIENT_HANDSHAKE_RECORD, 'complete record', finishedIndex))
  const expected = { type: ContentType.handshake, protected: true, content: hex(clientFinished) }
  t.same(seen(client.next()), expected, 'opened client Finished record')
  t.equal(client.next(), undefined, 'nothing left after the client Finished record')
  client.setReadProtection(protect(clientApplication))
  for (const { step, nth } of spec.clientApplicationRecords) client.push(trace.get(step, 'complete record', nth))
  for (const { name, step, nth, type } of spec.clientApplicationRecords) {
    const payload = hex(trace.get(step, 'payload', nth))
    t.same(seen(client.next()), { type, protected: true, content: payload }, `opened client ${name} record`)
  }
  t.equal(client.next(), undefined, 'nothing left after the client application records')

  // A flipped ciphertext bit must fail authentication without consuming the sequence number.
  const record = Buffer.from(trace.get(CLIENT_HANDSHAKE_RECORD, 'complete record', finishedIndex))
  const reader = protect(clientHandshake)
  record[10] ^= 1
  t.equal(reader.open(record.subarray(0, 5), record.subarray(5)), undefined, 'tampered client Finished record is rejected')
  record[10] ^= 1
  const opened = reader.open(record.subarray(0, 5), record.subarray(5))
  t.equal(hex(opened?.content ?? Buffer.alloc(0)), hex(clientFinished), 'the intact record still opens at the same sequence number')
}

t.test('RFC 8448 §3 Simple 1-RTT Handshake', { skip: traceMissing }, async t => {
  const trace = new Trace('3.  Simple 1-RTT Handshake')

  t.test('X25519 key exchange', async t => {
    const client = (field: string) => trace.get('{client}  create an ephemeral x25519 key pair:', field)
    const server = (field: string) => trace.get('{server}  create an ephemeral x25519 key pair:', field)
    const shared = trace.get('{server}  extract secret "handshake":', 'IKM')
    // The provider's X25519 always generates its own key pair, so the known answer is checked on node:crypto;
    // the schedule below then starts from the trace's shared secret.
    const publicOf = (raw: Buffer) =>
      (createPublicKey(x25519Private(raw)).export({ format: 'der', type: 'spki' }) as Buffer).subarray(X25519_SPKI_PREFIX.length)
    const agree = (privateKey: Buffer, publicKey: Buffer) =>
      diffieHellman({ privateKey: x25519Private(privateKey), publicKey: x25519Public(publicKey) })
    t.equal(hex(publicOf(server('private key'))), hex(server('public key')), 'server public key from its private key')
    t.equal(hex(publicOf(client('private key'))), hex(client('public key')), 'client public key from its private key')
    t.equal(hex(agree(server('private key'), client('public key'))), hex(shared), 'server-side shared secret')
    t.equal(hex(agree(client('private key'), server('public key'))), hex(shared), 'client-side shared secret')
  })

  t.test('ClientHello parses', async t => {
    const hello = parseClientHello(trace.get('{client}  construct a ClientHello handshake message', 'ClientHello').subarray(4))
    const { TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_256_GCM_SHA384 } = CipherSuite
    t.same(hello.cipherSuites, [TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_256_GCM_SHA384], 'cipher suites')
    t.equal(hello.extensions.serverName, 'server', 'server_name')
    const share = hello.extensions.keyShares?.find(k => k.group === NamedGroup.x25519)
    const clientPublic = trace.get('{client}  create an ephemeral x25519 key pair:', 'public key')
    t.equal(hex(share?.keyExchange ?? Buffer.alloc(0)), hex(clientPublic), 'x25519 key share')
  })

  t.test('Certificate message encoding', async t => {
    const message = trace.get('{server}  construct a Certificate handshake message', 'Certificate')
    // type(1) len(3) context(1) list len(3) cert len(3) cert extensions(2)
    const cert = message.subarray(11, 11 + message.readUIntBE(8, 3))
    t.equal(hex(certificate13([cert])), hex(message), 'certificate13 rebuilds the message')
  })

  t.test('key schedule, Finished and records', async t => {
    checkHandshake(t, {
      trace,
      helloIndex: 0,
      startTranscript: transcript => transcript.add(trace.get('{client}  construct a ClientHello handshake message', 'ClientHello')),
      plaintextServerRecords: 1,
      plaintextClientRecords: 1,
      serverApplicationRecords: [
        { name: 'NewSessionTicket', step: SERVER_HANDSHAKE_RECORD, nth: 2, type: ContentType.handshake },
        { name: 'application data', step: '{server}  send application_data record:', nth: 0, type: ContentType.applicationData },
        { name: 'close_notify', step: '{server}  send alert record:', nth: 0, type: ContentType.alert },
      ],
      clientApplicationRecords: [
        { name: 'application data', step: '{client}  send application_data record:', nth: 0, type: ContentType.applicationData },
        { name: 'close_notify', step: '{client}  send alert record:', nth: 0, type: ContentType.alert },
      ],
    })
  })
})

t.test('RFC 8448 §5 HelloRetryRequest', { skip: traceMissing }, async t => {
  const trace = new Trace('5.  HelloRetryRequest')
  const clientHello1 = trace.get('{client}  construct a ClientHello handshake message', 'ClientHello', 0)
  const helloRetryRequest = trace.get('{server}  construct a ServerHello handshake message', 'ServerHello', 0)
  const clientHello2 = trace.get('{client}  construct a ClientHello handshake message', 'ClientHello', 1)

  t.test('P-256 key exchange', async t => {
    const serverPrivate = trace.get('{server}  create an ephemeral P-256 key pair:', 'private key')
    const serverPublic = trace.get('{server}  create an ephemeral P-256 key pair:', 'public key')
    const clientPublic = trace.get('{client}  create an ephemeral P-256 key pair:', 'public key')
    const ecdh = createECDH('prime256v1')
    ecdh.setPrivateKey(serverPrivate)
    t.equal(hex(ecdh.getPublicKey(null, 'uncompressed')), hex(serverPublic), 'server public key from its private key')
    t.equal(hex(ecdh.computeSecret(clientPublic)), hex(trace.get('{server}  extract secret "handshake":', 'IKM')), 'shared secret')
    const share = parseClientHello(clientHello2.subarray(4)).extensions.keyShares?.find(k => k.group === NamedGroup.secp256r1)
    t.equal(hex(share?.keyExchange ?? Buffer.alloc(0)), hex(clientPublic), 'second ClientHello carries the P-256 share')
  })

  t.test('HelloRetryRequest random', async t => {
    t.equal(hex(helloRetryRequest.subarray(6, 38)), hex(HELLO_RETRY_REQUEST_RANDOM), 'HRR random is SHA-256("HelloRetryRequest")')
  })

  t.test('key schedule, Finished and records', async t => {
    checkHandshake(t, {
      trace,
      helloIndex: 1,
      // RFC 8446 §4.4.1: ClientHello1 is replaced by message_hash before the HRR goes in.
      startTranscript: (transcript, h) => {
        transcript.add(clientHello1)
        transcript.replaceWithMessageHash(h, HandshakeType.messageHash)
        transcript.add(helloRetryRequest)
        transcript.add(clientHello2)
      },
      plaintextServerRecords: 2,
      plaintextClientRecords: 2,
      serverApplicationRecords: [{ name: 'close_notify', step: '{server}  send alert record:', nth: 0, type: ContentType.alert }],
      clientApplicationRecords: [{ name: 'close_notify', step: '{client}  send alert record:', nth: 0, type: ContentType.alert }],
    })
  })
})
