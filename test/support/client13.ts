// A hand-made TLS 1.3 client (TLS_AES_128_GCM_SHA256 with an X25519 share), with its key schedule written from RFC 8446
// 4.4 and 7.1 rather than from titus. Sans-IO: it builds the ClientHello a test asks for, reads what the server sends,
// checks the server's Finished, and seals records, so that a test can finish a real handshake and then send what no
// real client would (early data, a bad KeyUpdate, a forged record) or look at the records the server chose to send.
import { createHash, createHmac } from 'node:crypto'
import { hkdfExpandLabel, openRecord, sealRecord, trafficKeys, type RecordKeys } from './record-crypto.js'
import {
  CONTENT_TYPE,
  GROUP_CODE,
  HANDSHAKE_TYPE,
  SUITE_CODE,
  clientHello,
  ext,
  handshakeMessage,
  parseRecords,
  parseServerHello,
  record,
  x25519KeyPair,
  type ClientHelloFields,
  type HandshakeMessage,
  type TlsRecord,
} from './wire.js'

const ZEROS = Buffer.alloc(32)
const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest()
const hkdfExtract = (salt: Buffer, ikm: Buffer) => createHmac('sha256', salt).update(ikm).digest()
const deriveSecret = (secret: Buffer, label: string, transcriptHash: Buffer) => hkdfExpandLabel(secret, label, 32, transcriptHash)
const finishedMac = (trafficSecret: Buffer, transcriptHash: Buffer) =>
  createHmac('sha256', hkdfExpandLabel(trafficSecret, 'finished', 32)).update(transcriptHash).digest()

export class HandMadeClient13 {
  // The ClientHello handshake message.
  readonly hello: Buffer
  // Every record the server sent, as it came.
  readonly serverRecords: TlsRecord[] = []
  // The server's handshake messages, decrypted.
  readonly messages: HandshakeMessage[] = []
  readonly applicationData: Buffer[] = []
  // The description of the first alert the server sent.
  alert?: number
  serverFinished = false
  private readonly keyPair = x25519KeyPair()
  private readonly transcript: Buffer[] = []
  private unparsed = Buffer.alloc(0)
  private handshakeBytes = Buffer.alloc(0)
  private read?: { keys: RecordKeys; sequence: number }
  private write?: { keys: RecordKeys; sequence: number }
  private handshakeSecret?: Buffer
  private clientHandshakeSecret?: Buffer
  private serverHandshakeSecret?: Buffer
  private clientApplicationSecret?: Buffer

  // `extra` follows the standard TLS 1.3 extensions (a pre_shared_key must come last).
  constructor(extra: Buffer[] = [], fields: ClientHelloFields = {}) {
    const standard = [
      ext.supportedVersions([0x0304]),
      ext.supportedGroups([GROUP_CODE.x25519]),
      ext.signatureAlgorithms(),
      ext.keyShare([{ group: GROUP_CODE.x25519, key: this.keyPair.publicKey }]),
    ]
    this.hello = clientHello({ cipherSuites: [SUITE_CODE.TLS_AES_128_GCM_SHA256], ...fields, extensions: [...standard, ...extra] })
    this.transcript.push(this.hello)
  }

  get helloRecord(): Buffer {
    return record(CONTENT_TYPE.handshake, this.hello, 0x0301)
  }

  // Takes bytes from the server; throws if the server's Finished does not verify.
  receive(bytes: Buffer): void {
    const { records, rest } = parseRecords(Buffer.concat([this.unparsed, bytes]))
    this.unparsed = Buffer.from(rest)
    for (const r of records) {
      this.serverRecords.push(r)
      if (r.type === CONTENT_TYPE.applicationData && this.read) {
        const inner = openRecord(this.read.keys, this.read.sequence++, r.body)
        this.take(inner.type, inner.content)
      } else {
        this.take(r.type, r.body)
      }
    }
  }

  // The client's Finished, sealed under its handshake traffic key; later records use its application traffic key.
  finishedRecord(): Buffer {
    if (!this.serverFinished) throw new Error("the server's Finished has not arrived")
    const verifyData = finishedMac(this.clientHandshakeSecret!, sha256(...this.transcript))
    const sealed = this.seal(CONTENT_TYPE.handshake, handshakeMessage(HANDSHAKE_TYPE.finished, verifyData))
    this.write = { keys: trafficKeys(this.clientApplicationSecret!), sequence: 0 }
    return sealed
  }

  // A protected record of the given real type under the current write key.
  seal(type: number, content: Buffer): Buffer {
    return sealRecord(this.write!.keys, this.write!.sequence++, type, content)
  }

  private take(type: number, content: Buffer): void {
    if (type === CONTENT_TYPE.alert) this.alert ??= content[1]
    if (type === CONTENT_TYPE.applicationData) this.applicationData.push(content)
    if (type !== CONTENT_TYPE.handshake) return // change_cipher_spec: nothing to do
    this.handshakeBytes = Buffer.concat([this.handshakeBytes, content])
    while (this.handshakeBytes.length >= 4 && this.handshakeBytes.length >= 4 + this.handshakeBytes.readUIntBE(1, 3)) {
      const raw = this.handshakeBytes.subarray(0, 4 + this.handshakeBytes.readUIntBE(1, 3))
      this.handshakeBytes = this.handshakeBytes.subarray(raw.length)
      this.handshake(raw)
    }
  }

  private handshake(raw: Buffer): void {
    const message = { type: raw[0]!, body: raw.subarray(4) }
    this.messages.push(message)
    if (this.serverFinished) return // post-handshake messages are not part of the transcript
    if (message.type === HANDSHAKE_TYPE.finished) {
      const expected = finishedMac(this.serverHandshakeSecret!, sha256(...this.transcript))
      if (!expected.equals(message.body)) throw new Error('the server Finished does not verify')
    }
    this.transcript.push(raw)
    if (message.type === HANDSHAKE_TYPE.serverHello) {
      const hello = parseServerHello(message.body)
      if (hello.helloRetryRequest || !hello.keyExchange) throw new Error('HelloRetryRequest: this client offers X25519 only')
      const early = hkdfExtract(ZEROS, ZEROS)
      this.handshakeSecret = hkdfExtract(deriveSecret(early, 'derived', sha256()), this.keyPair.sharedSecret(hello.keyExchange))
      const helloHash = sha256(...this.transcript)
      this.clientHandshakeSecret = deriveSecret(this.handshakeSecret, 'c hs traffic', helloHash)
      this.serverHandshakeSecret = deriveSecret(this.handshakeSecret, 's hs traffic', helloHash)
      this.read = { keys: trafficKeys(this.serverHandshakeSecret), sequence: 0 }
      this.write = { keys: trafficKeys(this.clientHandshakeSecret), sequence: 0 }
    } else if (message.type === HANDSHAKE_TYPE.finished) {
      const master = hkdfExtract(deriveSecret(this.handshakeSecret!, 'derived', sha256()), ZEROS)
      const transcriptHash = sha256(...this.transcript)
      this.clientApplicationSecret = deriveSecret(master, 'c ap traffic', transcriptHash)
      this.read = { keys: trafficKeys(deriveSecret(master, 's ap traffic', transcriptHash)), sequence: 0 }
      this.serverFinished = true
    }
  }
}
