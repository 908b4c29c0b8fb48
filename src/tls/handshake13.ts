// TLS 1.3 server handshake state machine (RFC 8446 §2, §4): full 1-RTT handshake, HelloRetryRequest,
// no client authentication, no resumption (PSK offers are declined), 0-RTT refused, KeyUpdate.
import { KeyShareError, constantTimeEqual, randomBytes, startKeyExchange } from '../crypto/provider.js'
import { TlsAlert } from './alerts.js'
import {
  ContentType,
  ExtensionType,
  GROUP_NAMES,
  HandshakeType,
  MAX_PLAINTEXT,
  TLS13_SIGNATURE_SCHEMES,
  TLS13_SUITES,
  signatureSchemeName,
  type Tls13SuiteSpec,
} from './constants.js'
import {
  negotiateAlpn,
  pickPreferred,
  pickSignatureScheme,
  signWith,
  type HandshakeHost,
  type HandshakeStart,
  type ResolvedPolicy,
  type ServerHandshake,
} from './handshake.js'
import { KeySchedule, Transcript, finishedVerifyData, nextTrafficSecret, trafficKeys } from './key-schedule.js'
import {
  HELLO_RETRY_REQUEST_RANDOM,
  certificate13,
  certificateVerify,
  encryptedExtensions,
  finished,
  keyUpdate,
  parseClientHello,
  parseKeyUpdate,
  serverHello13,
  type ClientHello,
  type HandshakeMessage,
} from './messages.js'
import type { RawExtension } from './extensions.js'
import { RecordProtection } from './record.js'
import type { Credential, HandshakeInfo } from './types.js'

/** Our record_size_limit (RFC 8449): a full TLS 1.3 record plus its content type byte. */
const OUR_RECORD_SIZE_LIMIT = MAX_PLAINTEXT + 1
const CERTIFICATE_VERIFY_CONTEXT = Buffer.from('TLS 1.3, server CertificateVerify\0', 'latin1')

type State =
  | 'start' // expecting the ClientHello
  | 'wait_second_client_hello' // sent HelloRetryRequest
  | 'wait_finished' // sent our flight, expecting the client's Finished
  | 'connected'

export class Tls13ServerHandshake implements ServerHandshake {
  private state: State = 'start'
  private readonly transcript = new Transcript()
  private suite!: Tls13SuiteSpec
  private schedule!: KeySchedule
  private credential!: Credential
  private policy!: ResolvedPolicy
  private firstHello!: ClientHello
  private retry?: { group: number; cookie: Buffer }
  private sentChangeCipherSpec = false
  private expectedClientFinished?: Buffer
  private clientTrafficSecret?: Buffer
  private serverTrafficSecret?: Buffer
  private pendingInfo?: Omit<HandshakeInfo, 'helloRetryRequest'>

  constructor(private readonly host: HandshakeHost) {}

  get complete(): boolean {
    return this.state === 'connected'
  }

  async start({ hello, raw, credential, policy }: HandshakeStart): Promise<boolean> {
    if (this.state !== 'start') throw new TlsAlert('unexpected_message', 'handshake already started')
    this.firstHello = hello
    this.transcript.add(raw)
    if (hello.compressionMethods.length !== 1 || hello.compressionMethods[0] !== 0) {
      throw new TlsAlert('illegal_parameter', 'TLS 1.3 requires null compression only')
    }
    const ext = hello.extensions
    if (!ext.signatureAlgorithms) throw new TlsAlert('missing_extension', 'no signature_algorithms')
    if (!ext.supportedGroups) throw new TlsAlert('missing_extension', 'no supported_groups')
    if (!ext.keyShares) throw new TlsAlert('missing_extension', 'no key_share')
    // RFC 8446 §4.2.9: a PSK offer without its key exchange modes is aborted, even though we decline PSKs.
    if (ext.preSharedKey && !ext.pskKeyExchangeModes) throw new TlsAlert('missing_extension', 'pre_shared_key without psk_key_exchange_modes')
    if (ext.keyShares.some(share => !ext.supportedGroups!.includes(share.group))) {
      throw new TlsAlert('illegal_parameter', 'key_share for a group not in supported_groups')
    }
    this.credential = credential
    this.policy = policy

    const suiteCode = pickPreferred(policy.cipherSuites, hello.cipherSuites, policy.honorClientOrder)
    if (suiteCode === undefined) throw new TlsAlert('handshake_failure', 'no common cipher suite')
    this.suite = TLS13_SUITES.get(suiteCode)!
    this.schedule = new KeySchedule(this.suite.hash)

    // Prefer a group the client already sent a share for (saves a round trip); else ask for one.
    const sharedGroups = ext.keyShares.map(share => share.group)
    const group = pickPreferred(policy.groups, sharedGroups, policy.honorClientOrder)
    if (group !== undefined) return this.respond(hello)
    const retryGroup = pickPreferred(policy.groups, ext.supportedGroups, policy.honorClientOrder)
    if (retryGroup === undefined) throw new TlsAlert('handshake_failure', 'no common group')
    this.sendHelloRetryRequest(hello, retryGroup)
    return false
  }

  async handleMessage(message: HandshakeMessage): Promise<boolean> {
    switch (this.state) {
      case 'wait_second_client_hello': {
        if (message.type !== HandshakeType.clientHello) throw new TlsAlert('unexpected_message', 'expected the second ClientHello')
        const hello = parseClientHello(message.body)
        this.checkSecondClientHello(hello)
        this.host.records.stopSkippingEarlyData()
        this.transcript.add(message.raw)
        return this.respond(hello)
      }
      case 'wait_finished':
        if (message.type !== HandshakeType.finished) throw new TlsAlert('unexpected_message', 'expected Finished')
        this.receiveFinished(message)
        return true
      case 'connected':
        if (message.type !== HandshakeType.keyUpdate) {
          throw new TlsAlert('unexpected_message', `handshake message ${message.type} after the handshake`)
        }
        this.receiveKeyUpdate(parseKeyUpdate(message.body))
        return true
      default:
        throw new TlsAlert('unexpected_message', `handshake message ${message.type} in state ${this.state}`)
    }
  }

  /** RFC 8446 §5: an unprotected 0x01 from the first ClientHello until the client's Finished is dropped, however many come. */
  receiveChangeCipherSpec(): boolean {
    if (this.complete) throw new TlsAlert('unexpected_message', 'change_cipher_spec after the handshake')
    return false
  }

  private sendHelloRetryRequest(hello: ClientHello, group: number): void {
    // We keep state, so the cookie is just an unpredictable value the client must echo.
    this.retry = { group, cookie: randomBytes(32) }
    const hrr = serverHello13({
      random: HELLO_RETRY_REQUEST_RANDOM,
      sessionId: hello.sessionId,
      cipherSuite: this.suite.code,
      keyShare: { group },
      cookie: this.retry.cookie,
    })
    this.transcript.replaceWithMessageHash(this.suite.hash, HandshakeType.messageHash)
    this.transcript.add(hrr)
    this.host.records.write(ContentType.handshake, hrr)
    this.sendCompatibilityChangeCipherSpec(hello)
    // A client that tried 0-RTT keeps sending it until it reads the HelloRetryRequest.
    if (hello.extensions.earlyData) this.host.records.skipEarlyData()
    this.state = 'wait_second_client_hello'
  }

  /**
   * RFC 8446 §4.1.2: the second ClientHello repeats the first except for the listed changes. Extensions other than
   * those repeat byte for byte, so what the first hello passed (supported_versions, signature_algorithms, ...) still holds.
   */
  private checkSecondClientHello(hello: ClientHello): void {
    const first = this.firstHello
    const ext = hello.extensions
    const problem = [
      hello.legacyVersion !== first.legacyVersion && 'legacy_version changed',
      !Buffer.from(hello.random).equals(first.random) && 'random changed',
      !Buffer.from(hello.sessionId).equals(first.sessionId) && 'legacy_session_id changed',
      !sameList(hello.cipherSuites, first.cipherSuites) && 'cipher_suites changed',
      !Buffer.from(hello.compressionMethods).equals(first.compressionMethods) && 'compression methods changed',
      extensionChange(first.rawExtensions, hello.rawExtensions),
      (ext.keyShares?.length !== 1 || ext.keyShares[0].group !== this.retry!.group) && 'key_share is not the one requested',
      (ext.cookie === undefined || !constantTimeEqual(ext.cookie, this.retry!.cookie)) && 'cookie not echoed',
      ext.earlyData && 'early_data after HelloRetryRequest',
    ].find(found => found)
    if (problem) throw new TlsAlert('illegal_parameter', `second ClientHello: ${problem}`)
  }

  /** Sends ServerHello..Finished for `hello` (the first ClientHello, or the second after a retry). */
  private async respond(hello: ClientHello): Promise<boolean> {
    const { records } = this.host
    const policy = this.policy
    const ext = hello.extensions
    const keyShares = ext.keyShares!
    const groupCode = this.retry?.group ?? pickPreferred(policy.groups, keyShares.map(s => s.group), policy.honorClientOrder)!
    const peerShare = keyShares.find(share => share.group === groupCode)!
    const scheme = pickSignatureScheme(this.credential, TLS13_SIGNATURE_SCHEMES, ext.signatureAlgorithms!, policy.honorClientOrder)
    if (scheme === undefined) throw new TlsAlert('handshake_failure', 'no common signature scheme')
    const alpn = negotiateAlpn(policy, ext.alpn)
    if (ext.recordSizeLimit !== undefined) records.maxSendFragment = Math.min(ext.recordSizeLimit - 1, MAX_PLAINTEXT)

    const groupName = GROUP_NAMES.get(groupCode)!
    const exchange = startKeyExchange(groupName)
    let sharedSecret: Buffer
    try {
      sharedSecret = exchange.computeSecret(peerShare.keyExchange)
    } catch (err) {
      if (err instanceof KeyShareError) throw new TlsAlert('illegal_parameter', err.message)
      throw err
    }

    const serverHello = serverHello13({
      random: randomBytes(32),
      sessionId: hello.sessionId,
      cipherSuite: this.suite.code,
      keyShare: { group: groupCode, keyExchange: exchange.publicKey },
    })
    this.transcript.add(serverHello)
    records.write(ContentType.handshake, serverHello)
    this.sendCompatibilityChangeCipherSpec(hello)

    const hashName = this.suite.hash
    const secrets = this.schedule.handshakeSecrets(sharedSecret, this.transcript.hash(hashName))
    sharedSecret.fill(0)
    // Zeroed however this ends: the signature may fail, and nothing needs them after the flight.
    try {
      records.setWriteProtection(this.protection(secrets.serverHandshakeTrafficSecret))
      records.setReadProtection(this.protection(secrets.clientHandshakeTrafficSecret))
      // We never accept 0-RTT: the client's early data is undecryptable and gets skipped.
      if (ext.earlyData) records.skipEarlyData()

      const flight: Buffer[] = []
      const send = (message: Buffer): void => {
        flight.push(message)
        this.transcript.add(message)
      }
      const recordSizeLimit = ext.recordSizeLimit !== undefined ? OUR_RECORD_SIZE_LIMIT : undefined
      send(encryptedExtensions({ serverNameAcknowledged: ext.serverName !== undefined, alpn, recordSizeLimit }))
      send(certificate13(this.credential.chain))
      const signed = Buffer.concat([Buffer.alloc(64, 0x20), CERTIFICATE_VERIFY_CONTEXT, this.transcript.hash(hashName)])
      send(certificateVerify(scheme, await signWith(this.credential, scheme, signed)))
      send(finished(finishedVerifyData(hashName, secrets.serverHandshakeTrafficSecret, this.transcript.hash(hashName))))
      records.write(ContentType.handshake, Buffer.concat(flight))

      const transcriptHash = this.transcript.hash(hashName)
      const application = this.schedule.applicationSecrets(secrets.handshakeSecret, transcriptHash)
      this.expectedClientFinished = finishedVerifyData(hashName, secrets.clientHandshakeTrafficSecret, transcriptHash)
      records.setWriteProtection(this.protection(application.serverApplicationTrafficSecret))
      this.serverTrafficSecret = application.serverApplicationTrafficSecret
      this.clientTrafficSecret = application.clientApplicationTrafficSecret
      // Kept for exporters and resumption once they exist; zeroed now as nothing uses them yet.
      application.masterSecret.fill(0)
      application.exporterMasterSecret.fill(0)
    } finally {
      for (const secret of [secrets.handshakeSecret, secrets.serverHandshakeTrafficSecret, secrets.clientHandshakeTrafficSecret]) {
        secret.fill(0)
      }
    }

    this.pendingInfo = {
      version: 'TLSv1.3',
      cipherSuite: this.suite.name,
      group: groupName,
      signatureScheme: signatureSchemeName(scheme),
      alpn,
      serverName: ext.serverName,
    }
    this.state = 'wait_finished'
    return true
  }

  /** One dummy change_cipher_spec after our first handshake message, for middlebox compatibility (RFC 8446 §D.4). */
  private sendCompatibilityChangeCipherSpec(hello: ClientHello): void {
    if (this.sentChangeCipherSpec || hello.sessionId.length === 0) return
    this.host.records.write(ContentType.changeCipherSpec, Uint8Array.of(1))
    this.sentChangeCipherSpec = true
  }

  private receiveFinished(message: HandshakeMessage): void {
    const expected = this.expectedClientFinished!
    const ok = constantTimeEqual(message.body, expected)
    expected.fill(0)
    this.expectedClientFinished = undefined
    if (!ok) throw new TlsAlert('decrypt_error', 'client Finished does not verify')
    this.host.records.setReadProtection(this.protection(this.clientTrafficSecret!))
    this.state = 'connected'
    this.host.emit({ type: 'handshake', info: { ...this.pendingInfo!, helloRetryRequest: this.retry !== undefined } })
  }

  private receiveKeyUpdate(updateRequested: boolean): void {
    const next = nextTrafficSecret(this.suite.hash, this.clientTrafficSecret!)
    this.clientTrafficSecret!.fill(0)
    this.clientTrafficSecret = next
    this.host.records.setReadProtection(this.protection(next))
    if (updateRequested && !this.host.writeClosed) this.sendKeyUpdate(false)
  }

  sendKeyUpdate(updateRequested: boolean): void {
    if (this.state !== 'connected') throw new Error('KeyUpdate before the handshake completed')
    this.host.records.write(ContentType.handshake, keyUpdate(updateRequested))
    const next = nextTrafficSecret(this.suite.hash, this.serverTrafficSecret!)
    this.serverTrafficSecret!.fill(0)
    this.serverTrafficSecret = next
    this.host.records.setWriteProtection(this.protection(next))
  }

  abandon(): void {
    this.expectedClientFinished?.fill(0)
    this.clientTrafficSecret?.fill(0)
    this.serverTrafficSecret?.fill(0)
  }

  private protection(trafficSecret: Buffer): RecordProtection {
    const { key, iv } = trafficKeys(this.suite.hash, this.suite.aead, trafficSecret)
    const protection = new RecordProtection(this.suite.aead, key, iv)
    key.fill(0)
    return protection
  }
}

/** How RFC 8446 §4.1.2 lets a second ClientHello differ from the first in its extensions. */
const RETRY_MAY_ADD: ReadonlySet<number> = new Set([ExtensionType.cookie, ExtensionType.padding])
const RETRY_MAY_REMOVE: ReadonlySet<number> = new Set([ExtensionType.earlyData, ExtensionType.padding])
const RETRY_MAY_CHANGE: ReadonlySet<number> = new Set([ExtensionType.keyShare, ExtensionType.preSharedKey, ExtensionType.padding])

/** The first extension the second ClientHello adds, removes or changes against the rules; undefined if none. */
function extensionChange(first: readonly RawExtension[], second: readonly RawExtension[]): string | undefined {
  const before = new Map(first.map(e => [e.type, e.data]))
  const after = new Map(second.map(e => [e.type, e.data]))
  for (const type of new Set([...before.keys(), ...after.keys()])) {
    const [old, now] = [before.get(type), after.get(type)]
    if (!now && !RETRY_MAY_REMOVE.has(type)) return `extension ${type} removed`
    if (!old && !RETRY_MAY_ADD.has(type)) return `extension ${type} added`
    if (old && now && !RETRY_MAY_CHANGE.has(type) && !Buffer.from(old).equals(now)) return `extension ${type} changed`
  }
  return undefined
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i])
}
