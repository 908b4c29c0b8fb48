// TLS 1.2 server handshake state machine (RFC 5246 §7.3, full handshake only): ECDHE (RFC 8422) or DHE
// (RFC 7919 negotiation) with AEAD suites, the ServerKeyExchange signed through the Signer (the keyserver),
// extended master secret (RFC 7627; required unless the policy says otherwise), renegotiation_info (RFC 5746)
// with renegotiation refused. No resumption (empty session_id, no tickets), no client certificates.
import { KeyShareError, constantTimeEqual, ffdhePrime, randomBytes, startFiniteFieldDh, startKeyExchange, type KeyExchange } from '../crypto/provider.js'
import { AlertDescription, TlsAlert } from './alerts.js'
import {
  ContentType,
  DOWNGRADE_SENTINEL_TLS12,
  ECC_GROUPS,
  FFDHE_GROUPS,
  GROUP_NAMES,
  HandshakeType,
  MAX_PLAINTEXT,
  ProtocolVersion,
  SignallingSuite,
  SignatureScheme,
  TLS12_SIGNATURE_SCHEMES,
  TLS12_SUITES,
  signatureSchemeName,
  type AuthenticationKind,
  type Tls12SuiteSpec,
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
import { Transcript } from './key-schedule.js'
import { finished, type ClientHello, type HandshakeMessage } from './messages.js'
import {
  EC_POINT_FORMAT_UNCOMPRESSED,
  certificate12,
  encodeKeyExchangeParams,
  parseClientKeyExchange,
  parseFinished12,
  serverHello12,
  serverHelloDone,
  serverKeyExchange,
  type KeyExchangeParams,
} from './messages12.js'
import { extendedMasterSecret, finishedVerifyData12, keyBlock, legacyMasterSecret } from './prf.js'
import { Tls12RecordProtection } from './record.js'
import type { Credential, DhParameters, HandshakeInfo } from './types.js'

type State =
  | 'start' // expecting the ClientHello
  | 'wait_client_key_exchange' // sent ServerHello..ServerHelloDone
  | 'wait_change_cipher_spec' // have the client's key share and both directions' keys
  | 'wait_finished' // the client's change_cipher_spec switched its records to the new keys
  | 'connected'

/** Signature schemes a suite's authentication admits (RFC 8422 §5.1.3: ECDSA suites also take EdDSA keys). */
const SCHEMES_BY_AUTHENTICATION: Record<AuthenticationKind, ReadonlySet<number>> = {
  RSA: new Set(
    [
      SignatureScheme.rsa_pss_rsae_sha256,
      SignatureScheme.rsa_pss_rsae_sha384,
      SignatureScheme.rsa_pss_rsae_sha512,
      SignatureScheme.rsa_pkcs1_sha256,
      SignatureScheme.rsa_pkcs1_sha384,
      SignatureScheme.rsa_pkcs1_sha512,
    ].filter(s => TLS12_SIGNATURE_SCHEMES.has(s)),
  ),
  ECDSA: new Set(
    [
      SignatureScheme.ecdsa_secp256r1_sha256,
      SignatureScheme.ecdsa_secp384r1_sha384,
      SignatureScheme.ecdsa_secp521r1_sha512,
      SignatureScheme.ed25519,
    ].filter(s => TLS12_SIGNATURE_SCHEMES.has(s)),
  ),
}

/** RFC 8422 §5.1.1 (and OpenSSL, which checks it): an ECDSA certificate's curve must be in supported_groups. */
const ECDSA_SCHEME_CURVES: ReadonlyMap<number, number> = new Map([
  [SignatureScheme.ecdsa_secp256r1_sha256, 0x0017],
  [SignatureScheme.ecdsa_secp384r1_sha384, 0x0018],
  [SignatureScheme.ecdsa_secp521r1_sha512, 0x0019],
])

/** How the chosen suite's key exchange will run. group: a NamedGroup; undefined for configured DH parameters. */
interface KeyExchangePlan {
  readonly suite: Tls12SuiteSpec
  readonly group?: number
  readonly scheme: number
}

export class Tls12ServerHandshake implements ServerHandshake {
  private state: State = 'start'
  private readonly transcript = new Transcript()
  private suite!: Tls12SuiteSpec
  private clientRandom!: Uint8Array
  private serverRandom!: Buffer
  private exchange!: KeyExchange | Omit<KeyExchange, 'group'>
  /** DHE: the prime's length, to which the client's public value is left-padded. */
  private dhPrimeLength = 0
  private useExtendedMasterSecret = false
  private masterSecret?: Buffer
  private clientProtection?: Tls12RecordProtection
  private serverProtection?: Tls12RecordProtection
  private expectedClientFinished?: Buffer
  private info?: HandshakeInfo

  constructor(private readonly host: HandshakeHost) {}

  get complete(): boolean {
    return this.state === 'connected'
  }

  async start({ hello, raw, credential, policy }: HandshakeStart): Promise<boolean> {
    if (this.state !== 'start') throw new TlsAlert('unexpected_message', 'handshake already started')
    this.transcript.add(raw)
    this.clientRandom = hello.random
    const ext = hello.extensions
    // As OpenSSL: a list without the null method does not decode as a TLS 1.2 hello.
    if (!hello.compressionMethods.includes(0)) throw new TlsAlert('decode_error', 'null compression not offered')
    // RFC 5746 §3.6: in an initial handshake renegotiated_connection is empty.
    if (ext.renegotiationInfo !== undefined && ext.renegotiationInfo.length > 0) {
      throw new TlsAlert('handshake_failure', 'non-empty renegotiation_info in an initial handshake')
    }
    const secureRenegotiation =
      ext.renegotiationInfo !== undefined || hello.cipherSuites.includes(SignallingSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV)
    // RFC 7627 §5.3 lets a server refuse a client without EMS; by default we do (no triple-handshake class attacks).
    if (!ext.extendedMasterSecret && policy.requireExtendedMasterSecret) {
      throw new TlsAlert('handshake_failure', 'client does not support extended_master_secret')
    }
    this.useExtendedMasterSecret = ext.extendedMasterSecret
    // RFC 5246 §7.4.1.4.1: without signature_algorithms the client takes only SHA-1 signatures; we make none.
    if (!ext.signatureAlgorithms) throw new TlsAlert('handshake_failure', 'no signature_algorithms: SHA-1 only, which we do not sign')
    // RFC 8422 §5.1.2: uncompressed points are mandatory.
    if (ext.ecPointFormats && !ext.ecPointFormats.includes(EC_POINT_FORMAT_UNCOMPRESSED)) {
      throw new TlsAlert('illegal_parameter', 'ec_point_formats without uncompressed')
    }

    const plan = this.choose(hello, credential, policy)
    this.suite = plan.suite
    const alpn = negotiateAlpn(policy, ext.alpn)
    // RFC 8449 §4: in TLS 1.2 the limit counts plaintext only (no inner content type byte).
    if (ext.recordSizeLimit !== undefined) this.host.records.maxSendFragment = Math.min(ext.recordSizeLimit, MAX_PLAINTEXT)

    this.serverRandom = randomBytes(32)
    // RFC 8446 §4.1.3: a server that could have spoken TLS 1.3 marks the downgrade.
    if (policy.versions.includes(ProtocolVersion.tls13)) this.serverRandom.set(DOWNGRADE_SENTINEL_TLS12, 24)

    const { params, groupName } = this.startKeyExchange(plan, policy.dhParams)
    const encodedParams = encodeKeyExchangeParams(params)
    const signed = Buffer.concat([this.clientRandom, this.serverRandom, encodedParams])
    const signature = await signWith(credential, plan.scheme, signed)

    const flight = [
      serverHello12({
        random: this.serverRandom,
        cipherSuite: plan.suite.code,
        renegotiationInfo: secureRenegotiation,
        extendedMasterSecret: this.useExtendedMasterSecret,
        ecPointFormats: plan.suite.keyExchange === 'ECDHE' && ext.ecPointFormats !== undefined,
        serverNameAcknowledged: ext.serverName !== undefined,
        alpn,
        recordSizeLimit: ext.recordSizeLimit !== undefined ? MAX_PLAINTEXT : undefined,
      }),
      certificate12(credential.chain),
      serverKeyExchange(encodedParams, plan.scheme, signature),
      serverHelloDone(),
    ]
    for (const message of flight) this.transcript.add(message)
    this.host.records.write(ContentType.handshake, Buffer.concat(flight))
    // The version is settled: every later record of the client's must say TLS 1.2, as OpenSSL insists too.
    this.host.records.requireVersion(ProtocolVersion.tls12)

    this.info = {
      version: 'TLSv1.2',
      cipherSuite: plan.suite.name,
      group: groupName,
      signatureScheme: signatureSchemeName(plan.scheme),
      alpn,
      serverName: ext.serverName,
      helloRetryRequest: false,
    }
    this.state = 'wait_client_key_exchange'
    return false
  }

  /** The first suite (ours or the client's order) whose key exchange and signature both work out. */
  private choose(hello: ClientHello, credential: Credential, policy: ResolvedPolicy): KeyExchangePlan {
    const ext = hello.extensions
    const honor = policy.honorClientOrder
    const ordered = honor
      ? hello.cipherSuites.filter(code => policy.cipherSuites12.includes(code))
      : policy.cipherSuites12.filter(code => hello.cipherSuites.includes(code))
    const ourCurves = policy.groups.filter(g => ECC_GROUPS.has(g))
    const ourFfdhe = policy.groups.filter(g => FFDHE_GROUPS.has(g))
    // RFC 8422 §4: a client without supported_groups lets the server pick any curve.
    const clientCurves = ext.supportedGroups?.filter(g => ECC_GROUPS.has(g)) ?? ourCurves
    // RFC 7919 §4: any code point 256..511 means the client negotiates FFDHE groups, known to us or not.
    const clientNegotiatesFfdhe = ext.supportedGroups?.some(g => g >= 0x0100 && g <= 0x01ff) ?? false
    const clientFfdhe = ext.supportedGroups?.filter(g => FFDHE_GROUPS.has(g)) ?? []

    const clientGroups = ext.supportedGroups
    const usableSchemes = (auth: AuthenticationKind): ReadonlySet<number> =>
      new Set([...SCHEMES_BY_AUTHENTICATION[auth]].filter(s => !ECDSA_SCHEME_CURVES.has(s) || !clientGroups || clientGroups.includes(ECDSA_SCHEME_CURVES.get(s)!)))
    const schemesFor = { RSA: usableSchemes('RSA'), ECDSA: usableSchemes('ECDSA') }

    for (const code of ordered) {
      const suite = TLS12_SUITES.get(code)!
      const scheme = pickSignatureScheme(credential, schemesFor[suite.authentication], ext.signatureAlgorithms!, honor)
      if (scheme === undefined) continue
      if (suite.keyExchange === 'ECDHE') {
        const group = pickPreferred(ourCurves, clientCurves, honor)
        if (group !== undefined) return { suite, group, scheme }
      } else if (!clientNegotiatesFfdhe) {
        return { suite, scheme } // the configured parameters
      } else {
        // RFC 7919 §4: one of the client's groups, or no FFDHE suite at all.
        const group = pickPreferred(ourFfdhe, clientFfdhe, honor)
        if (group !== undefined) return { suite, group, scheme }
      }
    }
    throw new TlsAlert('handshake_failure', 'no TLS 1.2 suite with a common group and signature scheme')
  }

  private startKeyExchange(plan: KeyExchangePlan, dhParams: DhParameters): { params: KeyExchangeParams; groupName: string } {
    if (plan.suite.keyExchange === 'ECDHE') {
      const exchange = startKeyExchange(GROUP_NAMES.get(plan.group!)!)
      this.exchange = exchange
      return { params: { kind: 'ECDHE', group: plan.group!, publicKey: exchange.publicKey }, groupName: exchange.group }
    }
    if (plan.group !== undefined) {
      const exchange = startKeyExchange(GROUP_NAMES.get(plan.group)!)
      this.exchange = exchange
      const p = ffdhePrime(exchange.group as 'ffdhe2048')
      this.dhPrimeLength = p.length
      return { params: { kind: 'DHE', p, g: Uint8Array.of(2), publicKey: exchange.publicKey }, groupName: exchange.group }
    }
    const groupName = dhGroupName(dhParams)
    this.exchange = startFiniteFieldDh(dhParams, groupName)
    this.dhPrimeLength = dhParams.p.length
    return { params: { kind: 'DHE', p: dhParams.p, g: dhParams.g, publicKey: this.exchange.publicKey }, groupName }
  }

  async handleMessage(message: HandshakeMessage): Promise<boolean> {
    switch (this.state) {
      case 'wait_client_key_exchange':
        // We ask for no client certificate, so the client's next message is its key exchange.
        if (message.type !== HandshakeType.clientKeyExchange) throw new TlsAlert('unexpected_message', 'expected ClientKeyExchange')
        this.receiveClientKeyExchange(message)
        return false
      case 'wait_finished':
        if (message.type !== HandshakeType.finished) throw new TlsAlert('unexpected_message', 'expected Finished')
        this.receiveFinished(message)
        return false
      case 'connected':
        if (message.type === HandshakeType.clientHello) {
          // Client-initiated renegotiation is refused as OpenSSL 3 does by default: a no_renegotiation warning,
          // the hello ignored, the connection kept on its first session (a client that insists gives up itself).
          this.host.sendWarningAlert(AlertDescription.no_renegotiation)
          return false
        }
        throw new TlsAlert('unexpected_message', `handshake message ${message.type} after the handshake`)
      default:
        throw new TlsAlert('unexpected_message', `handshake message ${message.type} in state ${this.state}`)
    }
  }

  private receiveClientKeyExchange(message: HandshakeMessage): void {
    let publicValue = parseClientKeyExchange(message.body, this.suite.keyExchange)
    this.transcript.add(message.raw)
    if (this.suite.keyExchange === 'DHE') {
      // dh_Yc is a minimal-length integer; the provider wants it at the prime's length.
      if (publicValue.length > this.dhPrimeLength) throw new TlsAlert('illegal_parameter', 'DH public value longer than the prime')
      const padded = Buffer.alloc(this.dhPrimeLength)
      padded.set(publicValue, this.dhPrimeLength - publicValue.length)
      publicValue = padded
    }
    let sharedSecret: Buffer
    try {
      sharedSecret = this.exchange.computeSecret(publicValue)
    } catch (err) {
      if (err instanceof KeyShareError) throw new TlsAlert('illegal_parameter', err.message)
      throw err
    }
    // RFC 5246 §8.1.2: the DH pre-master secret has its leading zero bytes stripped (ECDH: RFC 8422 §5.10, none).
    let start = 0
    if (this.suite.keyExchange === 'DHE') while (start < sharedSecret.length - 1 && sharedSecret[start] === 0) start++
    const preMasterSecret = sharedSecret.subarray(start)
    const h = this.suite.hash
    this.masterSecret = this.useExtendedMasterSecret
      ? extendedMasterSecret(h, preMasterSecret, this.transcript.hash(h))
      : legacyMasterSecret(h, preMasterSecret, this.clientRandom, this.serverRandom)
    sharedSecret.fill(0)
    const keys = keyBlock(h, this.suite.aead, this.masterSecret, this.clientRandom, this.serverRandom)
    this.clientProtection = new Tls12RecordProtection(this.suite.aead, keys.clientKey, keys.clientIv)
    this.serverProtection = new Tls12RecordProtection(this.suite.aead, keys.serverKey, keys.serverIv)
    keys.block.fill(0)
    this.state = 'wait_change_cipher_spec'
  }

  /** RFC 5246 §7.1: only between ClientKeyExchange and Finished; from here on the client's records are protected. */
  receiveChangeCipherSpec(): boolean {
    if (this.state !== 'wait_change_cipher_spec') {
      throw new TlsAlert('unexpected_message', `change_cipher_spec in state ${this.state}`)
    }
    this.host.records.setReadProtection(this.clientProtection)
    this.clientProtection = undefined
    // CCS is not a handshake message: the client's Finished covers everything up to ClientKeyExchange.
    this.expectedClientFinished = finishedVerifyData12(this.suite.hash, this.masterSecret!, 'client', this.transcript.hash(this.suite.hash))
    this.state = 'wait_finished'
    return true
  }

  private receiveFinished(message: HandshakeMessage): void {
    const masterSecret = this.masterSecret!
    const expected = this.expectedClientFinished!
    this.expectedClientFinished = undefined
    let ok: boolean
    try {
      ok = constantTimeEqual(parseFinished12(message.body), expected)
    } finally {
      expected.fill(0)
    }
    if (!ok) {
      masterSecret.fill(0)
      throw new TlsAlert('decrypt_error', 'client Finished does not verify')
    }
    this.transcript.add(message.raw)
    const verifyData = finishedVerifyData12(this.suite.hash, masterSecret, 'server', this.transcript.hash(this.suite.hash))
    // No resumption and no exporters: nothing needs the master secret any more.
    masterSecret.fill(0)
    this.masterSecret = undefined
    const { records } = this.host
    records.write(ContentType.changeCipherSpec, Uint8Array.of(1))
    records.setWriteProtection(this.serverProtection!)
    this.serverProtection = undefined
    records.write(ContentType.handshake, finished(verifyData))
    this.state = 'connected'
    this.host.emit({ type: 'handshake', info: this.info! })
  }

  sendKeyUpdate(): void {
    throw new Error('TLS 1.2 has no KeyUpdate')
  }

  abandon(): void {
    this.masterSecret?.fill(0)
    this.expectedClientFinished?.fill(0)
  }
}

/** The name we report for configured DH parameters: the RFC 7919 group if the prime is one, else its size. */
function dhGroupName({ p, g }: DhParameters): string {
  if (g.length === 1 && g[0] === 2) {
    for (const name of ['ffdhe2048', 'ffdhe3072', 'ffdhe4096'] as const) if (ffdhePrime(name).equals(p)) return name
  }
  return `dh${p.length * 8}`
}
