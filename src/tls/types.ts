// Public types of the TLS server engine (re-exported by server.ts and index.ts).

/** Signs with a private key the engine never sees (in-process or over IPC to the keyserver). */
export interface Signer {
  /** TLS SignatureScheme code points this key can produce, in our preference order. */
  readonly schemes: readonly number[]
  /** `message` is the exact byte string to sign (TLS 1.3: 64 spaces || context || 0 || transcript hash). */
  sign(scheme: number, message: Uint8Array): Promise<Uint8Array>
}

/**
 * Negotiation policy. Server-wide in TlsServerOptions; a Credential may override any of it, because a
 * vhost (chosen by SNI from the ClientHello) brings its own ciphers, curves and ALPN.
 */
export interface TlsPolicy {
  /** TLS 1.3 suites in server preference order; suites this runtime's crypto lacks are dropped.
   * Default: AES-128-GCM, AES-256-GCM, then ChaCha20-Poly1305 where available. */
  cipherSuites?: number[]
  /** NamedGroup code points in server preference order. Default x25519, secp256r1, secp384r1, ffdhe2048/3072/4096. */
  groups?: number[]
  /** Use the client's order (cipher suites, groups, signature schemes) instead of ours. Default false. */
  honorClientOrder?: boolean
  /**
   * Protocols we serve, in our preference order. undefined: the client's ALPN extension is ignored.
   * Otherwise the first of ours that the client also offers is selected; no overlap is a fatal
   * no_application_protocol alert. A client that sends no ALPN gets none.
   */
  alpn?: string[]
}

export interface Credential extends TlsPolicy {
  /** DER certificates, leaf first. */
  chain: Uint8Array[]
  signer: Signer
}

export interface ClientHelloInfo {
  serverName?: string
  alpn: string[]
  versions: number[]
  cipherSuites: number[]
  groups: number[]
  signatureSchemes: number[]
}

export interface TlsServerOptions extends TlsPolicy {
  /**
   * Called once per handshake (with the first ClientHello) to choose the certificate, e.g. by SNI.
   * Returning undefined aborts the handshake: with unrecognized_name (112) when the client sent a
   * server_name, otherwise with handshake_failure (40).
   */
  selectCredential(hello: ClientHelloInfo): Credential | undefined | Promise<Credential | undefined>
  /** Enabled protocol versions; default [0x0304]. */
  versions?: number[]
}

export interface HandshakeInfo {
  version: string // 'TLSv1.3'
  cipherSuite: string // e.g. 'TLS_AES_128_GCM_SHA256'
  group: string // e.g. 'x25519'
  signatureScheme: string // e.g. 'ecdsa_secp256r1_sha256'
  alpn?: string
  serverName?: string
  helloRetryRequest: boolean
}

export type TlsEvent =
  | { type: 'handshake'; info: HandshakeInfo }
  | { type: 'close_notify' }
  | { type: 'alert'; sent: boolean; level: 'warning' | 'fatal'; description: number; name: string }
  | { type: 'error'; message: string }

export interface TlsOutput {
  /** Records for the client, in order. Outputs of successive calls must be sent in the order the calls returned. */
  toClient: Uint8Array[]
  plaintext: Uint8Array[]
  events: TlsEvent[]
}
