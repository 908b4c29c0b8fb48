// Sans-IO TLS server connection: bytes in, records/plaintext/events out. Version-independent: it frames
// records and handshake messages, handles alerts and application data, picks the credential (vhost) from
// the ClientHello, negotiates the version with that credential's policy and hands the handshake to that
// version's module.
import { AlertDescription, TlsAlert, alertName } from './alerts.js'
import { ContentType, ProtocolVersion, SignallingSuite } from './constants.js'
import {
  clientHelloInfo,
  resolvePolicy,
  type HandshakeHost,
  type ResolvedOptions,
  type ResolvedPolicy,
  type ServerHandshake,
} from './handshake.js'
import { Tls12ServerHandshake } from './handshake12.js'
import { Tls13ServerHandshake } from './handshake13.js'
import { HandshakeReader, parseClientHello, type ClientHello } from './messages.js'
import { RecordLayer, type InboundRecord } from './record.js'
import type { TlsEvent, TlsOutput, TlsServerOptions } from './types.js'

export type {
  ClientHelloInfo,
  Credential,
  DhParameters,
  HandshakeInfo,
  Signer,
  TlsEvent,
  TlsOutput,
  TlsPolicy,
  TlsServerOptions,
} from './types.js'

/** Handshake modules by protocol version. */
const HANDSHAKES: ReadonlyMap<number, (host: HandshakeHost) => ServerHandshake> = new Map<number, (host: HandshakeHost) => ServerHandshake>([
  [ProtocolVersion.tls13, host => new Tls13ServerHandshake(host)],
  [ProtocolVersion.tls12, host => new Tls12ServerHandshake(host)],
])

function resolveOptions(options: TlsServerOptions): ResolvedOptions {
  return { ...resolvePolicy(options), selectCredential: options.selectCredential }
}

/** RFC 8446 §4.2.1: with supported_versions only that list counts; without it the client speaks at most legacy_version. */
function negotiateVersion(hello: ClientHello, enabled: readonly number[]): number {
  const offered = hello.extensions.supportedVersions ?? [Math.min(hello.legacyVersion, ProtocolVersion.tls12)]
  const version = [...enabled].sort((a, b) => b - a).find(v => offered.includes(v))
  if (version === undefined) throw new TlsAlert('protocol_version', 'no common protocol version')
  // RFC 7507: a client retrying below its best version while we could have spoken a higher one.
  if (hello.cipherSuites.includes(SignallingSuite.TLS_FALLBACK_SCSV) && enabled.some(v => v > version)) {
    throw new TlsAlert('inappropriate_fallback', 'TLS_FALLBACK_SCSV below our highest version')
  }
  return version
}

export class TlsServer implements HandshakeHost {
  readonly records = new RecordLayer()
  readonly options: ResolvedOptions
  private readonly handshakeReader = new HandshakeReader()
  private handshake?: ServerHandshake
  private queue: Promise<unknown> = Promise.resolve()
  private plaintext: Uint8Array[] = []
  private events: TlsEvent[] = []
  private peerClosed = false
  private failed = false
  writeClosed = false

  constructor(options: TlsServerOptions) {
    this.options = resolveOptions(options)
  }

  get handshakeComplete(): boolean {
    return this.handshake?.complete ?? false
  }

  /** A fatal alert was sent or received, or both sides sent close_notify. */
  get closed(): boolean {
    return this.failed || (this.peerClosed && this.writeClosed)
  }

  emit(event: TlsEvent): void {
    this.events.push(event)
  }

  /** Processes bytes from the client. Overlapping calls are processed strictly in call order. Never rejects. */
  feed(data: Uint8Array): Promise<TlsOutput> {
    const result = this.queue.then(() => this.process(data))
    this.queue = result
    return result
  }

  /** Encrypts application data for the client. */
  write(plaintext: Uint8Array): TlsOutput {
    if (!this.handshakeComplete || this.failed || this.writeClosed) throw new Error('TLS connection is not writable')
    this.records.write(ContentType.applicationData, plaintext)
    return this.takeOutput()
  }

  /** Sends close_notify (half-close of our direction); the client's data is still delivered by feed(). */
  close(): TlsOutput {
    if (!this.failed && !this.writeClosed) {
      this.sendAlert('warning', AlertDescription.close_notify)
      this.writeClosed = true
    }
    return this.takeOutput()
  }

  /** TLS 1.3 only: throws on a TLS 1.2 connection, which has no KeyUpdate. */
  requestKeyUpdate(updateRequested: boolean): TlsOutput {
    if (!this.handshakeComplete || this.failed || this.writeClosed) throw new Error('TLS connection is not writable')
    this.handshake!.sendKeyUpdate(updateRequested)
    return this.takeOutput()
  }

  private async process(data: Uint8Array): Promise<TlsOutput> {
    try {
      if (!this.failed && !this.peerClosed) {
        this.records.push(data)
        for (;;) {
          if (this.failed || this.peerClosed) break
          const record = this.records.next()
          if (!record) break
          await this.handleRecord(record)
        }
      }
    } catch (err) {
      this.abort(err)
    }
    const output = this.takeOutput()
    output.plaintext = this.plaintext
    this.plaintext = []
    return output
  }

  private async handleRecord(record: InboundRecord): Promise<void> {
    if (this.handshakeReader.hasPartialMessage && record.type !== ContentType.handshake) {
      throw new TlsAlert('unexpected_message', 'record interleaved with a fragmented handshake message')
    }
    switch (record.type) {
      case ContentType.changeCipherSpec:
        // Always one unprotected 0x01; when it may come is the version's business.
        if (record.protected || !this.handshake || record.content.length !== 1 || record.content[0] !== 1) {
          throw new TlsAlert('unexpected_message', 'unexpected change_cipher_spec')
        }
        this.handshake.receiveChangeCipherSpec()
        return
      case ContentType.alert:
        // A client that fails before it has our keys can only alert in plaintext.
        if (!record.protected && this.records.readProtected && this.handshakeComplete) {
          throw new TlsAlert('unexpected_message', 'unprotected alert after the handshake')
        }
        this.receiveAlert(record.content)
        return
      case ContentType.handshake:
        if (!record.protected && this.records.readProtected) throw new TlsAlert('unexpected_message', 'unprotected handshake record')
        if (record.content.length === 0) throw new TlsAlert('unexpected_message', 'empty handshake record')
        this.handshakeReader.push(record.content)
        for (let message = this.handshakeReader.next(); message; message = this.handshakeReader.next()) {
          let readKeyChanged: boolean
          if (!this.handshake) {
            if (message.type !== 1) throw new TlsAlert('unexpected_message', 'expected ClientHello')
            const hello = parseClientHello(message.body)
            // The credential (vhost) comes first: its policy decides which versions are on.
            const credential = await this.options.selectCredential(clientHelloInfo(hello))
            if (!credential) {
              throw hello.extensions.serverName !== undefined
                ? new TlsAlert('unrecognized_name', `no certificate for ${hello.extensions.serverName}`)
                : new TlsAlert('handshake_failure', 'no certificate for a client without server_name')
            }
            let policy: ResolvedPolicy
            try {
              policy = resolvePolicy(credential, this.options)
            } catch (err) {
              throw new TlsAlert('internal_error', `credential policy: ${(err as Error).message}`)
            }
            const version = negotiateVersion(hello, policy.versions)
            this.handshake = HANDSHAKES.get(version)!(this)
            readKeyChanged = await this.handshake.start({ hello, raw: message.raw, credential, policy })
          } else {
            readKeyChanged = await this.handshake.handleMessage(message)
          }
          // RFC 8446 §5.1: handshake messages must not span a key change.
          if (readKeyChanged && this.handshakeReader.hasPartialMessage) {
            throw new TlsAlert('unexpected_message', 'handshake data spans a key change')
          }
          if (this.failed || this.peerClosed) return
        }
        return
      case ContentType.applicationData:
        if (!record.protected || !this.handshakeComplete) throw new TlsAlert('unexpected_message', 'application data before the handshake')
        this.plaintext.push(record.content)
        return
    }
  }

  private receiveAlert(content: Uint8Array): void {
    if (content.length !== 2 || (content[0] !== 1 && content[0] !== 2)) throw new TlsAlert('decode_error', 'malformed alert')
    const description = content[1]
    const level = content[0] === 1 ? 'warning' : 'fatal'
    this.emit({ type: 'alert', sent: false, level, description, name: alertName(description) })
    if (description === AlertDescription.close_notify) {
      this.peerClosed = true
      this.emit({ type: 'close_notify' })
    } else if (description !== AlertDescription.user_canceled) {
      // TLS 1.3 §6: every other alert is fatal, whatever its level says.
      this.failed = true
      this.emit({ type: 'error', message: `client sent ${alertName(description)} alert` })
    }
  }

  sendWarningAlert(description: number): void {
    if (!this.writeClosed) this.sendAlert('warning', description)
  }

  private sendAlert(level: 'warning' | 'fatal', description: number): void {
    this.records.write(ContentType.alert, Uint8Array.of(level === 'warning' ? 1 : 2, description))
    this.emit({ type: 'alert', sent: true, level, description, name: alertName(description) })
  }

  private abort(err: unknown): void {
    if (this.failed) return
    const alert = err instanceof TlsAlert ? err : new TlsAlert('internal_error', err instanceof Error ? err.message : String(err))
    try {
      this.sendAlert('fatal', alert.description)
    } catch {
      // The write side itself failed (e.g. sequence exhausted): nothing more can be said.
    }
    this.failed = true
    this.handshake?.abandon()
    this.emit({ type: 'error', message: alert.message })
  }

  private takeOutput(): TlsOutput {
    const events = this.events
    this.events = []
    return { toClient: this.records.takeOutput(), plaintext: [], events }
  }
}
