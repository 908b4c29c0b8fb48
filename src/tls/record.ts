// Record layer (RFC 8446 §5, RFC 5246 §6.2): framing, record protection (TLS 1.3, and TLS 1.2 AEAD per
// RFC 5288 / RFC 7905), and the inbound early-data skip.
import { AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH, createAead, type Aead, type AeadName } from '../crypto/provider.js'
import { TlsAlert } from './alerts.js'
import { ContentType, MAX_CIPHERTEXT, MAX_CIPHERTEXT_TLS12, MAX_PLAINTEXT, ProtocolVersion } from './constants.js'

export const RECORD_HEADER_LENGTH = 5

/** One direction's record protection, as the record layer drives it. */
export interface RecordCipher {
  /** Outer record types that arrive protected (TLS 1.3: application_data only; TLS 1.2: all but change_cipher_spec). */
  protects(type: number): boolean
  /** Largest protected fragment we accept. */
  readonly maxFragment: number
  /** Encrypts `content` of `type` into a complete record. */
  seal(type: number, content: Uint8Array): Buffer
  /** Decrypts a record; undefined if authentication fails (the sequence number then does not advance). */
  open(header: Uint8Array, fragment: Uint8Array): { type: number; content: Buffer } | undefined
}

/** The 64-bit record sequence number of one direction. */
class SequenceNumber {
  high = 0
  low = 0

  /** Advances; a wrap would repeat nonces, so refuse instead (far beyond any AEAD usage limit anyway). */
  advance(): void {
    if (++this.low === 2 ** 32) {
      this.low = 0
      if (++this.high === 2 ** 32) throw new TlsAlert('internal_error', 'sequence number exhausted')
    }
  }

  /** Writes `iv` XOR (sequence number, left-padded) into `nonce` (RFC 8446 §5.3, RFC 7905 §2). */
  xorInto(nonce: Buffer, iv: Buffer): void {
    nonce.set(iv)
    nonce.writeUInt32BE((iv.readUInt32BE(4) ^ this.high) >>> 0, 4)
    nonce.writeUInt32BE((iv.readUInt32BE(8) ^ this.low) >>> 0, 8)
  }

  writeTo(target: Buffer, offset: number): void {
    target.writeUInt32BE(this.high, offset)
    target.writeUInt32BE(this.low, offset + 4)
  }
}

/** TLS 1.3 AEAD state of one direction: key, static IV and the 64-bit sequence number. */
export class RecordProtection implements RecordCipher {
  readonly maxFragment = MAX_CIPHERTEXT
  private readonly aead: Aead
  private readonly nonce = Buffer.alloc(AEAD_NONCE_LENGTH)
  private readonly sequence = new SequenceNumber()

  constructor(aeadName: AeadName, key: Uint8Array, private readonly iv: Buffer) {
    this.aead = createAead(aeadName, key)
  }

  protects(type: number): boolean {
    return type === ContentType.applicationData
  }

  /** per-record nonce = iv XOR (64-bit sequence number, left-padded) (RFC 8446 §5.3); advances the sequence. */
  private nextNonce(): Buffer {
    this.sequence.xorInto(this.nonce, this.iv)
    this.sequence.advance()
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
    const savedHigh = this.sequence.high
    const savedLow = this.sequence.low
    const plaintext = this.aead.open(this.nextNonce(), header, encrypted)
    if (!plaintext) {
      this.sequence.high = savedHigh
      this.sequence.low = savedLow
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

/** Bytes of the per-record explicit nonce carried in TLS 1.2 AES-GCM records (RFC 5288 §3). */
const GCM_EXPLICIT_NONCE_LENGTH = 8
/** Bytes of the TLS 1.2 key block IV per direction: the GCM salt (RFC 5288 §3) or the ChaCha20 IV (RFC 7905 §2). */
export function tls12FixedIvLength(aead: AeadName): number {
  return aead === 'chacha20-poly1305' ? AEAD_NONCE_LENGTH : 4
}

/**
 * TLS 1.2 AEAD state of one direction (RFC 5246 §6.2.3.3). AES-GCM: nonce = 4-byte salt || 8-byte explicit
 * nonce sent in the record, and we use the sequence number as the explicit part (unique without a counter of
 * its own). ChaCha20-Poly1305: nonce = iv XOR sequence number, nothing explicit.
 */
export class Tls12RecordProtection implements RecordCipher {
  readonly maxFragment = MAX_CIPHERTEXT_TLS12
  private readonly aead: Aead
  private readonly iv: Buffer
  private readonly explicitNonce: boolean
  private readonly nonce = Buffer.alloc(AEAD_NONCE_LENGTH)
  private readonly sequence = new SequenceNumber()
  /** seq_num(8) || type(1) || version(2) || length(2) */
  private readonly additionalData = Buffer.alloc(13)

  constructor(aeadName: AeadName, key: Uint8Array, iv: Uint8Array) {
    if (iv.length !== tls12FixedIvLength(aeadName)) throw new Error(`${aeadName} in TLS 1.2 needs a ${tls12FixedIvLength(aeadName)}-byte IV`)
    this.aead = createAead(aeadName, key)
    this.explicitNonce = aeadName !== 'chacha20-poly1305'
    this.iv = Buffer.from(iv)
  }

  protects(type: number): boolean {
    return type !== ContentType.changeCipherSpec
  }

  /** Sets nonce and additional data for the current sequence number. */
  private prepare(type: number, version: number, plaintextLength: number): void {
    if (this.explicitNonce) {
      this.nonce.set(this.iv)
      this.sequence.writeTo(this.nonce, 4)
    } else {
      this.sequence.xorInto(this.nonce, this.iv)
    }
    this.sequence.writeTo(this.additionalData, 0)
    this.additionalData[8] = type
    this.additionalData.writeUInt16BE(version, 9)
    this.additionalData.writeUInt16BE(plaintextLength, 11)
  }

  seal(type: number, content: Uint8Array): Buffer {
    this.prepare(type, ProtocolVersion.tls12, content.length)
    const explicit = this.explicitNonce ? GCM_EXPLICIT_NONCE_LENGTH : 0
    const length = explicit + content.length + AEAD_TAG_LENGTH
    const header = recordHeader(type, length)
    const parts: Uint8Array[] = [header]
    if (explicit) parts.push(this.nonce.subarray(4))
    parts.push(this.aead.seal(this.nonce, this.additionalData, [content]))
    this.sequence.advance()
    return Buffer.concat(parts, RECORD_HEADER_LENGTH + length)
  }

  open(header: Uint8Array, fragment: Uint8Array): { type: number; content: Buffer } | undefined {
    const explicit = this.explicitNonce ? GCM_EXPLICIT_NONCE_LENGTH : 0
    if (fragment.length < explicit + AEAD_TAG_LENGTH) return undefined
    const type = header[0]
    // The additional data holds the negotiated version (RFC 5246 §6.2.3.3), not whatever the header claims.
    this.prepare(type, ProtocolVersion.tls12, fragment.length - explicit - AEAD_TAG_LENGTH)
    // The explicit nonce is whatever the sender chose (RFC 5288 §3); only the salt is ours.
    if (explicit) this.nonce.set(fragment.subarray(0, explicit), 4)
    const plaintext = this.aead.open(this.nonce, this.additionalData, fragment.subarray(explicit))
    if (!plaintext) return undefined
    this.sequence.advance()
    if (plaintext.length > MAX_PLAINTEXT) throw new TlsAlert('record_overflow', 'plaintext too large')
    return { type, content: plaintext }
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
  private readProtection?: RecordCipher
  private writeProtection?: RecordCipher
  private output: Buffer[] = []
  private earlyDataSkipBudget = 0
  /** Largest plaintext fragment we may send (peer's record_size_limit, RFC 8449). */
  maxSendFragment = MAX_PLAINTEXT
  /** The version every inbound record must carry, once a handshake that cares has negotiated it (TLS 1.2). */
  private requiredVersion?: number

  push(data: Uint8Array): void {
    this.inbound = this.inbound.length === 0 ? Buffer.from(data) : Buffer.concat([this.inbound, data])
  }

  setReadProtection(protection: RecordCipher | undefined): void {
    this.readProtection = protection
  }

  setWriteProtection(protection: RecordCipher): void {
    this.writeProtection = protection
  }

  /**
   * From now on every inbound record must carry `version` (RFC 5246 §6.2.1 and Appendix E.1: only the first
   * ClientHello's records may differ). Never called for TLS 1.3, which ignores the record version (RFC 8446 §5.1).
   */
  requireVersion(version: number): void {
    this.requiredVersion = version
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
      const version = this.inbound.readUInt16BE(1)
      if (this.requiredVersion !== undefined && version !== this.requiredVersion) {
        throw new TlsAlert('protocol_version', `record version 0x${version.toString(16).padStart(4, '0')} after the version was negotiated`)
      }
      const isProtected = this.readProtection?.protects(type) ?? false
      // Skipped 0-RTT records are encrypted even while we have no read key (after a HelloRetryRequest).
      const skippedEarlyData = !isProtected && type === ContentType.applicationData && this.earlyDataSkipBudget > 0
      const limit = isProtected ? this.readProtection!.maxFragment : skippedEarlyData ? MAX_CIPHERTEXT : MAX_PLAINTEXT
      if (length > limit) throw new TlsAlert('record_overflow', `record of ${length} bytes`)
      if (this.inbound.length < RECORD_HEADER_LENGTH + length) return undefined
      const header = this.inbound.subarray(0, RECORD_HEADER_LENGTH)
      const fragment = this.inbound.subarray(RECORD_HEADER_LENGTH, RECORD_HEADER_LENGTH + length)
      this.inbound = this.inbound.subarray(RECORD_HEADER_LENGTH + length)
      if (!isProtected) {
        if (skippedEarlyData) {
          // Early data after a HelloRetryRequest: the client never got keys for it from us (RFC 8446 §4.2.10).
          this.spendSkipBudget(length)
          continue
        }
        return { type, content: fragment, protected: false }
      }
      const opened = this.readProtection!.open(header, fragment)
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
