// Record layer (RFC 8446 §5): framing, TLS 1.3 record protection, and the inbound early-data skip.
import { AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH, createAead, type Aead, type AeadName } from '../crypto/provider.js'
import { TlsAlert } from './alerts.js'
import { ContentType, MAX_CIPHERTEXT, MAX_PLAINTEXT, ProtocolVersion } from './constants.js'

export const RECORD_HEADER_LENGTH = 5

/** AEAD state of one direction: key, static IV and the 64-bit sequence number. */
export class RecordProtection {
  private readonly aead: Aead
  private readonly nonce = Buffer.alloc(AEAD_NONCE_LENGTH)
  private sequenceHigh = 0
  private sequenceLow = 0

  constructor(aeadName: AeadName, key: Uint8Array, private readonly iv: Buffer) {
    this.aead = createAead(aeadName, key)
  }

  /** per-record nonce = iv XOR (64-bit sequence number, left-padded) (RFC 8446 §5.3); advances the sequence. */
  private nextNonce(): Buffer {
    this.nonce.set(this.iv)
    this.nonce.writeUInt32BE((this.iv.readUInt32BE(4) ^ this.sequenceHigh) >>> 0, 4)
    this.nonce.writeUInt32BE((this.iv.readUInt32BE(8) ^ this.sequenceLow) >>> 0, 8)
    if (++this.sequenceLow === 2 ** 32) {
      this.sequenceLow = 0
      // Far beyond any AEAD usage limit; a wrap would repeat nonces, so refuse instead.
      if (++this.sequenceHigh === 2 ** 32) throw new TlsAlert('internal_error', 'sequence number exhausted')
    }
    return this.nonce
  }

  /** Encrypts one TLSInnerPlaintext (content || type, no padding) into a complete record. */
  seal(type: number, content: Uint8Array): Buffer {
    const length = content.length + 1 + AEAD_TAG_LENGTH
    const header = recordHeader(ContentType.applicationData, length)
    const body = this.aead.seal(this.nextNonce(), header, [content, Uint8Array.of(type)])
    return Buffer.concat([header, body], RECORD_HEADER_LENGTH + length)
  }

  /** Decrypts a record; returns undefined if authentication fails (the sequence still advances only on success). */
  open(header: Uint8Array, encrypted: Uint8Array): { type: number; content: Buffer } | undefined {
    const savedHigh = this.sequenceHigh
    const savedLow = this.sequenceLow
    const plaintext = this.aead.open(this.nextNonce(), header, encrypted)
    if (!plaintext) {
      this.sequenceHigh = savedHigh
      this.sequenceLow = savedLow
      return undefined
    }
    // Strip zero padding; the last non-zero byte is the real content type (RFC 8446 §5.4).
    let end = plaintext.length
    while (end > 0 && plaintext[end - 1] === 0) end--
    if (end === 0) throw new TlsAlert('unexpected_message', 'record without a content type')
    if (end - 1 > MAX_PLAINTEXT) throw new TlsAlert('record_overflow', 'inner plaintext too large')
    return { type: plaintext[end - 1], content: plaintext.subarray(0, end - 1) }
  }
}

function recordHeader(type: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(RECORD_HEADER_LENGTH)
  header[0] = type
  header.writeUInt16BE(ProtocolVersion.tls12, 1)
  header.writeUInt16BE(length, 3)
  return header
}

export interface InboundRecord {
  readonly type: number
  readonly content: Buffer
  /** Whether the record was protected (CCS and plaintext alerts arrive unprotected during the handshake). */
  readonly protected: boolean
}

/** Bytes of undecryptable (0-RTT) records we skip before giving up (RFC 8446 §4.2.10). */
const EARLY_DATA_SKIP_LIMIT = 64 * 1024

/** Inbound and outbound record processing for one connection. */
export class RecordLayer {
  private inbound: Buffer = Buffer.alloc(0)
  private readProtection?: RecordProtection
  private writeProtection?: RecordProtection
  private output: Buffer[] = []
  private earlyDataSkipBudget = 0
  /** Largest plaintext fragment we may send (peer's record_size_limit, RFC 8449). */
  maxSendFragment = MAX_PLAINTEXT

  push(data: Uint8Array): void {
    this.inbound = this.inbound.length === 0 ? Buffer.from(data) : Buffer.concat([this.inbound, data])
  }

  setReadProtection(protection: RecordProtection | undefined): void {
    this.readProtection = protection
  }

  setWriteProtection(protection: RecordProtection): void {
    this.writeProtection = protection
  }

  get readProtected(): boolean {
    return this.readProtection !== undefined
  }

  /** Skip records we cannot read (rejected 0-RTT data), up to a bound, until one decrypts. */
  skipEarlyData(): void {
    this.earlyDataSkipBudget = EARLY_DATA_SKIP_LIMIT
  }

  /** The next complete record, decrypted if read protection is on; undefined if more bytes are needed. */
  next(): InboundRecord | undefined {
    for (;;) {
      if (this.inbound.length < RECORD_HEADER_LENGTH) return undefined
      const type = this.inbound[0]
      const length = this.inbound.readUInt16BE(3)
      if (type < ContentType.changeCipherSpec || type > ContentType.applicationData) {
        throw new TlsAlert('unexpected_message', `unknown record type ${type}`)
      }
      if (this.inbound[1] !== 3) throw new TlsAlert('protocol_version', 'record is not TLS')
      const limit = this.readProtection && type === ContentType.applicationData ? MAX_CIPHERTEXT : MAX_PLAINTEXT
      if (length > limit) throw new TlsAlert('record_overflow', `record of ${length} bytes`)
      if (this.inbound.length < RECORD_HEADER_LENGTH + length) return undefined
      const header = this.inbound.subarray(0, RECORD_HEADER_LENGTH)
      const fragment = this.inbound.subarray(RECORD_HEADER_LENGTH, RECORD_HEADER_LENGTH + length)
      this.inbound = this.inbound.subarray(RECORD_HEADER_LENGTH + length)
      if (type !== ContentType.applicationData || !this.readProtection) {
        if (type === ContentType.applicationData && this.earlyDataSkipBudget > 0) {
          // Early data after a HelloRetryRequest: the client never got keys for it from us.
          this.spendSkipBudget(length)
          continue
        }
        return { type, content: fragment, protected: false }
      }
      const opened = this.readProtection.open(header, fragment)
      if (!opened) {
        if (this.earlyDataSkipBudget > 0) {
          this.spendSkipBudget(length)
          continue
        }
        throw new TlsAlert('bad_record_mac', 'record failed authentication')
      }
      this.earlyDataSkipBudget = 0
      return { type: opened.type, content: opened.content, protected: true }
    }
  }

  private spendSkipBudget(length: number): void {
    this.earlyDataSkipBudget -= length
    if (this.earlyDataSkipBudget <= 0) throw new TlsAlert('bad_record_mac', 'too much rejected early data')
  }

  /** Stops skipping early data (the second ClientHello arrived, so the client has moved on). */
  stopSkippingEarlyData(): void {
    this.earlyDataSkipBudget = 0
  }

  /** Fragments `data` into records of `type`, protected if write protection is on, and queues them. */
  write(type: number, data: Uint8Array): void {
    const max = this.writeProtection ? this.maxSendFragment : MAX_PLAINTEXT
    let offset = 0
    do {
      const chunk = data.subarray(offset, offset + max)
      offset += chunk.length
      if (this.writeProtection) {
        this.output.push(this.writeProtection.seal(type, chunk))
      } else {
        this.output.push(Buffer.concat([recordHeader(type, chunk.length), chunk]))
      }
    } while (offset < data.length)
  }

  takeOutput(): Buffer[] {
    const out = this.output
    this.output = []
    return out
  }
}
