// Byte-level reader and writer for TLS presentation-language structures (RFC 8446 §3).
import { TlsAlert } from './alerts.js'

/** Reads big-endian integers and length-prefixed vectors; any overrun is a decode_error. */
export class Reader {
  private offset = 0
  constructor(private readonly data: Uint8Array) {}

  get remaining(): number {
    return this.data.length - this.offset
  }

  private take(length: number): Uint8Array {
    if (length > this.remaining) throw new TlsAlert('decode_error', 'message truncated')
    const out = this.data.subarray(this.offset, this.offset + length)
    this.offset += length
    return out
  }

  u8(): number {
    return this.take(1)[0]
  }

  u16(): number {
    const b = this.take(2)
    return (b[0] << 8) | b[1]
  }

  u24(): number {
    const b = this.take(3)
    return (b[0] << 16) | (b[1] << 8) | b[2]
  }

  bytes(length: number): Uint8Array {
    return this.take(length)
  }

  /** A vector with a `lengthBytes`-byte length prefix, returned as raw bytes. */
  vector(lengthBytes: 1 | 2 | 3, min = 0): Uint8Array {
    const length = lengthBytes === 1 ? this.u8() : lengthBytes === 2 ? this.u16() : this.u24()
    if (length < min) throw new TlsAlert('decode_error', 'vector too short')
    return this.take(length)
  }

  /** A vector with a length prefix, returned as a Reader over its contents. */
  sub(lengthBytes: 1 | 2 | 3, min = 0): Reader {
    return new Reader(this.vector(lengthBytes, min))
  }

  /** A vector of uint16 values (e.g. cipher suites, groups); an odd length is a decode_error. */
  u16List(lengthBytes: 1 | 2, min = 0): number[] {
    const raw = this.vector(lengthBytes, min)
    if (raw.length % 2 !== 0) throw new TlsAlert('decode_error', 'odd-length uint16 vector')
    const out: number[] = new Array(raw.length / 2)
    for (let i = 0; i < out.length; i++) out[i] = (raw[2 * i] << 8) | raw[2 * i + 1]
    return out
  }

  /** Requires that every byte was consumed. */
  end(): void {
    if (this.remaining !== 0) throw new TlsAlert('decode_error', 'trailing bytes')
  }
}

/** Growable big-endian writer with nested length-prefixed vectors. */
export class Writer {
  private buffer: Buffer
  private length = 0

  constructor(initialSize = 256) {
    this.buffer = Buffer.allocUnsafe(initialSize)
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + extra))
    this.buffer.copy(grown, 0, 0, this.length)
    this.buffer = grown
  }

  u8(value: number): this {
    this.reserve(1)
    this.buffer[this.length++] = value
    return this
  }

  u16(value: number): this {
    this.reserve(2)
    this.buffer.writeUInt16BE(value, this.length)
    this.length += 2
    return this
  }

  u24(value: number): this {
    this.reserve(3)
    this.buffer.writeUIntBE(value, this.length, 3)
    this.length += 3
    return this
  }

  bytes(data: Uint8Array): this {
    this.reserve(data.length)
    this.buffer.set(data, this.length)
    this.length += data.length
    return this
  }

  /** Writes a length prefix of `lengthBytes` bytes around whatever `body` writes. */
  vector(lengthBytes: 1 | 2 | 3, body: (w: this) => void): this {
    this.reserve(lengthBytes)
    const start = this.length
    this.length += lengthBytes
    body(this)
    const size = this.length - start - lengthBytes
    if (size >= 2 ** (8 * lengthBytes)) throw new Error('vector too long for its length prefix')
    this.buffer.writeUIntBE(size, start, lengthBytes)
    return this
  }

  finish(): Buffer {
    return this.buffer.subarray(0, this.length)
  }
}
