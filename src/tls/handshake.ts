// The seam between the version-independent connection (server.ts) and a version's handshake module
// (handshake13.ts, handshake12.ts), and the negotiation helpers both versions share.
import { aeadAvailable, checkDhParameters, ffdhePrime } from '../crypto/provider.js'
import { TlsAlert } from './alerts.js'
import { GROUP_NAMES, NamedGroup, ProtocolVersion, TLS12_SUITES, TLS13_SUITES, VERSION_NAMES } from './constants.js'
import type { ClientHello, HandshakeMessage } from './messages.js'
import type { RecordLayer } from './record.js'
import type { ClientHelloInfo, Credential, DhParameters, TlsEvent, TlsPolicy, TlsServerOptions } from './types.js'

export interface ResolvedPolicy {
  readonly versions: readonly number[]
  readonly cipherSuites: readonly number[]
  readonly cipherSuites12: readonly number[]
  readonly groups: readonly number[]
  readonly dhParams: DhParameters
  readonly requireExtendedMasterSecret: boolean
  readonly honorClientOrder: boolean
  readonly alpn?: readonly string[]
}

export interface ResolvedOptions extends ResolvedPolicy {
  readonly selectCredential: TlsServerOptions['selectCredential']
}

const DEFAULT_POLICY: ResolvedPolicy = {
  versions: [ProtocolVersion.tls13, ProtocolVersion.tls12],
  cipherSuites: [...TLS13_SUITES.keys()],
  cipherSuites12: [...TLS12_SUITES.keys()],
  groups: [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1, NamedGroup.ffdhe2048, NamedGroup.ffdhe3072, NamedGroup.ffdhe4096],
  get dhParams() {
    // A getter: the prime is decoded only when a policy without its own parameters is resolved.
    return { p: ffdhePrime('ffdhe2048'), g: Uint8Array.of(2) }
  },
  requireExtendedMasterSecret: true,
  honorClientOrder: false,
}

/** `policy`'s settings where given, else `base`'s; throws on a code point the engine does not know. */
export function resolvePolicy(policy: TlsPolicy, base: ResolvedPolicy = DEFAULT_POLICY): ResolvedPolicy {
  const versions = policy.versions ?? base.versions
  if (versions.length === 0) throw new Error('no TLS version enabled')
  for (const version of versions) if (!VERSION_NAMES.has(version)) throw new Error(`TLS version 0x${version.toString(16)} is not supported`)
  const suites = policy.cipherSuites ?? base.cipherSuites
  for (const suite of suites) if (!TLS13_SUITES.has(suite)) throw new Error(`unknown cipher suite 0x${suite.toString(16)}`)
  const suites12 = policy.cipherSuites12 ?? base.cipherSuites12
  for (const suite of suites12) if (!TLS12_SUITES.has(suite)) throw new Error(`unknown TLS 1.2 cipher suite 0x${suite.toString(16)}`)
  const groups = policy.groups ?? base.groups
  for (const group of groups) if (!GROUP_NAMES.has(group)) throw new Error(`unknown group 0x${group.toString(16)}`)
  const dhParams = policy.dhParams ?? base.dhParams
  if (policy.dhParams) checkDhParameters(policy.dhParams)
  return {
    versions,
    // Suites whose AEAD this runtime cannot provide are not offered (today every runtime has all three: the
    // provider falls back to @noble/ciphers for ChaCha20-Poly1305 where node:crypto lacks it, as on Bun).
    cipherSuites: suites.filter(suite => aeadAvailable(TLS13_SUITES.get(suite)!.aead)),
    cipherSuites12: suites12.filter(suite => aeadAvailable(TLS12_SUITES.get(suite)!.aead)),
    groups,
    dhParams,
    requireExtendedMasterSecret: policy.requireExtendedMasterSecret ?? base.requireExtendedMasterSecret,
    honorClientOrder: policy.honorClientOrder ?? base.honorClientOrder,
    alpn: policy.alpn ?? base.alpn,
  }
}

/** What the version-independent part settled before the version's handshake starts. */
export interface HandshakeStart {
  readonly hello: ClientHello
  /** The ClientHello message as hashed into the transcript. */
  readonly raw: Uint8Array
  readonly credential: Credential
  /** The server's options overridden by the credential's (the vhost's). */
  readonly policy: ResolvedPolicy
}

/** What a handshake module may use of its connection. */
export interface HandshakeHost {
  readonly records: RecordLayer
  /** We sent close_notify: no more KeyUpdates or data from us. */
  readonly writeClosed: boolean
  emit(event: TlsEvent): void
  /** Sends an alert without ending the connection (fatal alerts are thrown as TlsAlert instead). */
  sendWarningAlert(description: number): void
}

export interface ServerHandshake {
  readonly complete: boolean
  /** Handles the ClientHello that selected this version. Returns true if the read key changed. */
  start(start: HandshakeStart): Promise<boolean>
  /** Handles every later handshake message, including post-handshake ones. Returns true if the read key changed. */
  handleMessage(message: HandshakeMessage): Promise<boolean>
  /** A well-formed change_cipher_spec record (one byte, 1) arrived. Returns true if the read key changed. */
  receiveChangeCipherSpec(): boolean
  /** Sends a KeyUpdate and switches our write key (only after the handshake; TLS 1.3 only). */
  sendKeyUpdate(updateRequested: boolean): void
  /** The connection failed: zero every secret still held, as nothing will use them again. */
  abandon(): void
}

/** Picks the first of `preferred` that is also in `offered`; `preferred` order unless honoring the client's. */
export function pickPreferred<T>(ours: readonly T[], theirs: readonly T[], honorClientOrder: boolean): T | undefined {
  const [first, second] = honorClientOrder ? [theirs, ours] : [ours, theirs]
  return first.find(item => second.includes(item))
}

/** What selectCredential gets to see of a ClientHello (the vhost is chosen before the version). */
export function clientHelloInfo(hello: ClientHello): ClientHelloInfo {
  const ext = hello.extensions
  return {
    serverName: ext.serverName,
    alpn: ext.alpn ?? [],
    versions: ext.supportedVersions ?? [hello.legacyVersion],
    cipherSuites: hello.cipherSuites,
    groups: ext.supportedGroups ?? [],
    signatureSchemes: ext.signatureAlgorithms ?? [],
  }
}

/** RFC 7301 §3.2: the first of our protocols the client offers; none in common is no_application_protocol. */
export function negotiateAlpn(policy: ResolvedPolicy, offered: readonly string[] | undefined): string | undefined {
  const ours = policy.alpn
  if (!ours || !offered) return undefined
  const chosen = ours.find(protocol => offered.includes(protocol))
  if (chosen === undefined) throw new TlsAlert('no_application_protocol', `no common protocol in ${offered.join(', ')}`)
  return chosen
}

/** The signature scheme for our key: among `allowed` for this version, one the client accepts. */
export function pickSignatureScheme(
  credential: Credential,
  allowed: ReadonlySet<number>,
  clientSchemes: readonly number[],
  honorClientOrder: boolean,
): number | undefined {
  const ours = credential.signer.schemes.filter(scheme => allowed.has(scheme))
  return pickPreferred(ours, clientSchemes, honorClientOrder)
}

/** Asks the credential's signer; a refusal or failure is internal_error, never an exception escaping the engine. */
export async function signWith(credential: Credential, scheme: number, message: Uint8Array): Promise<Uint8Array> {
  try {
    return await credential.signer.sign(scheme, message)
  } catch (err) {
    throw new TlsAlert('internal_error', `signing failed: ${(err as Error).message}`)
  }
}
