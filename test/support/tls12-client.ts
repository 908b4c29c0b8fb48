// A hand-made TLS 1.2 client for the AES-128-GCM-SHA256 suites with ECDHE (x25519, P-256) or DHE, written from RFC 5246,
// 7627, 8422 and 5288 rather than from titus. It runs the handshake one step at a time over a raw socket, so that a
// test can send any client message broken, early, twice or not at all, and read exactly what titus answers.
import { createDiffieHellman, createECDH, createHash } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import type { Teardown } from './certs.js'
import { finishedVerifyData12, openRecord12, sealRecord12, tls12Keys, type Tls12Keys } from './record-crypto.js'
import {
  CONTENT_TYPE,
  EXTENSION,
  GROUP_CODE,
  HANDSHAKE_TYPE,
  handshakeMessage,
  parseHandshakeMessages,
  parseRecords,
  parseServerHello,
  parseServerKeyExchange12,
  record,
  vec16,
  vec8,
  x25519KeyPair,
  type ServerHelloInfo,
  type ServerKeyExchangeParams,
  type TlsRecord,
} from './wire.js'

export const TLS12_AES128_SUITES = { ECDHE_RSA: 0xc02f, ECDHE_ECDSA: 0xc02b, DHE_RSA: 0x009e } as const

export interface ServerFlight {
  hello: ServerHelloInfo
  params: ServerKeyExchangeParams
  extendedMasterSecret: boolean
}

export interface Ending {
  // What the server sent since the last message this client consumed.
  bytes: Buffer
  end: 'fin' | 'reset' | 'until' | 'timeout'
}

const sha256 = (parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest()

// Our key pair for the server's parameters: the public value to send and how to get the pre-master secret.
function keyShareFor(params: ServerKeyExchangeParams): { publicValue: Buffer; preMasterSecret: () => Buffer } {
  if (params.kind === 'DHE') {
    const dh = createDiffieHellman(params.p, params.g)
    const publicValue = dh.generateKeys()
    // RFC 5246 8.1.2: leading zero bytes of Z are stripped.
    return { publicValue, preMasterSecret: () => {
      const z = dh.computeSecret(params.publicKey)
      let start = 0
      while (start < z.length - 1 && z[start] === 0) start++
      return z.subarray(start)
    } }
  }
  if (params.group === GROUP_CODE.x25519) {
    const { publicKey, sharedSecret } = x25519KeyPair()
    return { publicValue: publicKey, preMasterSecret: () => sharedSecret(params.publicKey) }
  }
  if (params.group === GROUP_CODE.secp256r1) {
    const ecdh = createECDH('prime256v1')
    const publicValue = ecdh.generateKeys()
    return { publicValue, preMasterSecret: () => ecdh.computeSecret(params.publicKey) }
  }
  throw new Error(`the test client has no group 0x${params.group.toString(16)}`)
}

export class Tls12Client {
  private inbox: Buffer = Buffer.alloc(0)
  private ended?: 'fin' | 'reset'
  private wake = () => {}
  private readonly transcript: Buffer[] = []
  private clientRandom: Buffer = Buffer.alloc(0)
  private flight?: ServerFlight
  private ownShare?: ReturnType<typeof keyShareFor>
  // Set once a ClientKeyExchange with our own public value went out.
  keys?: Tls12Keys
  private clientSequence = 0
  private serverSequence = 0

  private constructor(private readonly socket: Socket) {
    socket.on('data', (b: Buffer) => {
      this.inbox = Buffer.concat([this.inbox, b])
      this.wake()
    })
    socket.on('end', () => this.finish('fin'))
    socket.on('error', () => this.finish('reset'))
  }

  static connect(t: Teardown, port: number): Promise<Tls12Client> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
      t.teardown(() => void socket.destroy())
      socket.once('connect', () => resolve(new Tls12Client(socket)))
      socket.once('error', reject)
    })
  }

  private finish(how: 'fin' | 'reset'): void {
    this.ended ??= how
    this.wake()
  }

  // Waits until `ready` says the inbox holds enough, the server closes, or the time is up.
  private async waitFor(ready: (inbox: Buffer) => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!ready(this.inbox) && !this.ended && Date.now() < deadline) {
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, deadline - Date.now())
        this.wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return ready(this.inbox)
  }

  // Takes the first `count` whole records out of the inbox.
  private take(count: number): TlsRecord[] {
    const { records } = parseRecords(this.inbox)
    const taken = records.slice(0, count)
    const used = taken.reduce((sum, r) => sum + 5 + r.body.length, 0)
    this.inbox = this.inbox.subarray(used)
    return taken
  }

  send(...records: Buffer[]): void {
    this.socket.write(Buffer.concat(records))
  }

  // Sends the ClientHello (hashed as given) and reads the server's flight up to ServerHelloDone.
  async hello(message: Buffer, recordVersion = 0x0301, timeoutMs = 10000): Promise<ServerFlight> {
    this.clientRandom = message.subarray(6, 38)
    this.transcript.push(message)
    this.send(record(CONTENT_TYPE.handshake, message, recordVersion))
    const handshakeBytes = (inbox: Buffer) => {
      const { records } = parseRecords(inbox)
      const end = records.findIndex(r => r.type !== CONTENT_TYPE.handshake)
      return Buffer.concat(records.slice(0, end < 0 ? records.length : end).map(r => r.body))
    }
    const done = (inbox: Buffer) => parseHandshakeMessages(handshakeBytes(inbox)).some(m => m.type === HANDSHAKE_TYPE.serverHelloDone)
    if (!(await this.waitFor(done, timeoutMs))) throw new Error(`no ServerHelloDone; the server sent ${this.inbox.toString('hex')}`)
    const all = handshakeBytes(this.inbox)
    const messages = parseHandshakeMessages(all)
    const last = messages.findIndex(m => m.type === HANDSHAKE_TYPE.serverHelloDone)
    // Everything up to ServerHelloDone; the flight ends on a record boundary.
    const flightLength = messages.slice(0, last + 1).reduce((sum, m) => sum + 4 + m.body.length, 0)
    let recordCount = 0
    for (let covered = 0; covered < flightLength; recordCount++) covered += parseRecords(this.inbox).records[recordCount]!.body.length
    this.take(recordCount)
    this.transcript.push(all.subarray(0, flightLength))
    const hello = parseServerHello(messages.find(m => m.type === HANDSHAKE_TYPE.serverHello)!.body)
    const kind = hello.cipherSuite === TLS12_AES128_SUITES.DHE_RSA ? 'DHE' : 'ECDHE'
    const params = parseServerKeyExchange12(messages.find(m => m.type === HANDSHAKE_TYPE.serverKeyExchange)!.body, kind)
    this.flight = { hello, params, extendedMasterSecret: hello.extensions.includes(EXTENSION.extendedMasterSecret) }
    return this.flight
  }

  // Our own public value for the server's parameters (made once).
  get publicValue(): Buffer {
    this.ownShare ??= keyShareFor(this.flight!.params)
    return this.ownShare.publicValue
  }

  // A ClientKeyExchange record: with our own public value (then the keys are derived), `publicValue` framed as the
  // key exchange says (8-bit length for ECDHE, RFC 8422 5.7; 16-bit for DHE, RFC 5246 7.4.7.2), or a raw `body`.
  clientKeyExchange(options: { publicValue?: Buffer; body?: Buffer; recordVersion?: number } = {}): Buffer {
    const ours = options.publicValue === undefined && options.body === undefined
    const value = options.publicValue ?? this.publicValue
    const body = options.body ?? (this.flight!.params.kind === 'DHE' ? vec16(value) : vec8(value))
    const message = handshakeMessage(HANDSHAKE_TYPE.clientKeyExchange, body)
    this.transcript.push(message)
    if (ours) {
      const sessionHash = this.flight!.extendedMasterSecret ? sha256(this.transcript) : undefined
      this.keys = tls12Keys(this.ownShare!.preMasterSecret(), this.clientRandom, this.flight!.hello.random, sessionHash)
    }
    return record(CONTENT_TYPE.handshake, message, options.recordVersion)
  }

  changeCipherSpec(body = Buffer.of(1), recordVersion = 0x0303): Buffer {
    return record(CONTENT_TYPE.changeCipherSpec, body, recordVersion)
  }

  // Our Finished, sealed (or `plaintext`): `flipBit` inverts the last bit of verify_data, `length` cuts or pads it.
  finished(options: { flipBit?: boolean; length?: number; plaintext?: boolean; recordVersion?: number } = {}): Buffer {
    const verifyData = finishedVerifyData12(this.keys!.masterSecret, 'client', sha256(this.transcript))
    const message = handshakeMessage(HANDSHAKE_TYPE.finished, verifyData)
    this.transcript.push(message)
    let sent = Buffer.from(verifyData)
    if (options.flipBit) sent[11] ^= 0x01
    if (options.length !== undefined) sent = Buffer.concat([sent, Buffer.alloc(Math.max(0, options.length - 12))]).subarray(0, options.length)
    const content = handshakeMessage(HANDSHAKE_TYPE.finished, sent)
    return options.plaintext ? record(CONTENT_TYPE.handshake, content, options.recordVersion) : this.seal(CONTENT_TYPE.handshake, content, options.recordVersion)
  }

  // A record under our write key (the next sequence number).
  seal(type: number, content: Buffer, recordVersion?: number): Buffer {
    return sealRecord12(this.keys!.client, this.clientSequence++, type, content, recordVersion)
  }

  // Reads the server's change_cipher_spec and Finished; throws unless verify_data is what RFC 5246 7.4.9 says.
  async serverFinished(timeoutMs = 10000): Promise<void> {
    if (!(await this.waitFor(inbox => parseRecords(inbox).records.length >= 2, timeoutMs))) {
      throw new Error(`no change_cipher_spec and Finished; the server sent ${this.inbox.toString('hex')}`)
    }
    const [ccs, sealed] = this.take(2) as [TlsRecord, TlsRecord]
    if (ccs.type !== CONTENT_TYPE.changeCipherSpec || !ccs.body.equals(Buffer.of(1))) throw new Error(`not a change_cipher_spec: ${ccs.type}`)
    const message = openRecord12(this.keys!.server, this.serverSequence++, sealed.type, sealed.body)
    const expected = finishedVerifyData12(this.keys!.masterSecret, 'server', sha256(this.transcript))
    if (!message.equals(handshakeMessage(HANDSHAKE_TYPE.finished, expected))) throw new Error(`wrong server Finished ${message.toString('hex')}`)
    this.transcript.push(message)
  }

  // Reads application data records until `length` bytes of plaintext have arrived.
  async applicationData(length: number, timeoutMs = 10000): Promise<Buffer> {
    const plaintext: Buffer[] = []
    let received = 0
    const deadline = Date.now() + timeoutMs
    while (received < length) {
      if (!(await this.waitFor(inbox => parseRecords(inbox).records.length > 0, deadline - Date.now()))) break
      const [r] = this.take(1) as [TlsRecord]
      if (r.type !== CONTENT_TYPE.applicationData) throw new Error(`record of type ${r.type} instead of application data`)
      const content = this.openServerRecord(r)
      plaintext.push(content)
      received += content.length
    }
    return Buffer.concat(plaintext)
  }

  // Opens a record the server sealed after its Finished.
  openServerRecord(r: TlsRecord): Buffer {
    return openRecord12(this.keys!.server, this.serverSequence++, r.type, r.body)
  }

  // Waits for the server to close; returns what it sent meanwhile.
  async ending(timeoutMs = 10000): Promise<Ending> {
    await this.waitFor(() => false, timeoutMs)
    const bytes = this.inbox
    this.inbox = Buffer.alloc(0)
    this.socket.destroy()
    return { bytes, end: this.ended ?? 'timeout' }
  }
}
