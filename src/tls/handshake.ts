// The seam between the version-independent connection (server.ts) and a version's handshake module
// (handshake13.ts; a TLS 1.2 module will implement the same interface).
import { aeadAvailable } from '../crypto/provider.js'
import { GROUP_NAMES, NamedGroup, TLS13_SUITES } from './constants.js'
import type { ClientHello, HandshakeMessage } from './messages.js'
import type { RecordLayer } from './record.js'
import type { TlsEvent, TlsPolicy, TlsServerOptions } from './types.js'

export interface ResolvedPolicy {
  readonly cipherSuites: readonly number[]
  readonly groups: readonly number[]
  readonly honorClientOrder: boolean
  readonly alpn?: readonly string[]
}

export interface ResolvedOptions extends ResolvedPolicy {
  readonly selectCredential: TlsServerOptions['selectCredential']
  readonly versions: readonly number[]
}

const DEFAULT_POLICY: ResolvedPolicy = {
  cipherSuites: [...TLS13_SUITES.keys()],
  groups: [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1, NamedGroup.ffdhe2048, NamedGroup.ffdhe3072, NamedGroup.ffdhe4096],
  honorClientOrder: false,
}

/** `policy`'s settings where given, else `base`'s; throws on a code point the engine does not know. */
export function resolvePolicy(policy: TlsPolicy, base: ResolvedPolicy = DEFAULT_POLICY): ResolvedPolicy {
  const suites = policy.cipherSuites ?? base.cipherSuites
  for (const suite of suites) if (!TLS13_SUITES.has(suite)) throw new Error(`unknown cipher suite 0x${suite.toString(16)}`)
  const groups = policy.groups ?? base.groups
  for (const group of groups) if (!GROUP_NAMES.has(group)) throw new Error(`unknown group 0x${group.toString(16)}`)
  return {
    // Suites whose AEAD this runtime lacks (ChaCha20-Poly1305 on Bun) are silently not offered.
    cipherSuites: suites.filter(suite => aeadAvailable(TLS13_SUITES.get(suite)!.aead)),
    groups,
    honorClientOrder: policy.honorClientOrder ?? base.honorClientOrder,
    alpn: policy.alpn ?? base.alpn,
  }
}

/** What a handshake module may use of its connection. */
export interface HandshakeHost {
  readonly records: RecordLayer
  readonly options: ResolvedOptions
  /** We sent close_notify: no more KeyUpdates or data from us. */
  readonly writeClosed: boolean
  emit(event: TlsEvent): void
}

export interface ServerHandshake {
  readonly complete: boolean
  /** Handles the ClientHello that selected this version. Returns true if the read key changed. */
  start(hello: ClientHello, raw: Uint8Array): Promise<boolean>
  /** Handles every later handshake message, including post-handshake ones. Returns true if the read key changed. */
  handleMessage(message: HandshakeMessage): Promise<boolean>
  /** Sends a KeyUpdate and switches our write key (only after the handshake). */
  sendKeyUpdate(updateRequested: boolean): void
}

/** Picks the first of `preferred` that is also in `offered`; `preferred` order unless honoring the client's. */
export function pickPreferred<T>(ours: readonly T[], theirs: readonly T[], honorClientOrder: boolean): T | undefined {
  const [first, second] = honorClientOrder ? [theirs, ours] : [ours, theirs]
  return first.find(item => second.includes(item))
}
