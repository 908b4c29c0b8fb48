// Public types of the TLS server engine (re-exported by server.ts and index.ts).

/** Signs with a private key the engine never sees (in-process or over IPC to the keyserver). */
export interface Signer {
  /** TLS SignatureScheme code points this key can produce, in our preference order. */
  readonly schemes: readonly number[]
  /** `message` is the exact byte string to sign (TLS 1.3: 64 spaces || context || 0 || transcript hash;
   * TLS 1.2: client_random || server_random || ServerECDHParams or ServerDHParams). */
  sign(scheme: number, message: Uint8Array): Promise<Uint8Array>
}

/**
 * Negotiation policy. Server-wide in TlsServerOptions; a Credential may override any of it, because a
 * vhost (chosen by SNI from the ClientHello) brings its own ciphers, curves and ALPN.
 */
export interface TlsPolicy {
  /** Enabled protocol versions (0x0304, 0x0303). Default both. A credential's list replaces the server's, so a
   * vhost can turn a version off; the version is negotiated after the credential is chosen. */
  versions?: number[]
  /** TLS 1.3 suites in server preference order; suites this runtime's crypto lacks are dropped.
   * Default: AES-128-GCM, AES-256-GCM, then ChaCha20-Poly1305 where available. */
  cipherSuites?: number[]
  /** TLS 1.2 suites (ECDHE/DHE AEAD only) in server preference order; unavailable AEADs are dropped likewise.
   * Default: ECDHE before DHE, AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305. */
  cipherSuites12?: number[]
  /** NamedGroup code points in server preference order. Default x25519, secp256r1, secp384r1, ffdhe2048/3072/4096.
   * TLS 1.2 ECDHE uses the curves among them, DHE the ffdhe groups the client offers (RFC 7919). */
  groups?: number[]
  /** TLS 1.2 DHE parameters for clients that offer no RFC 7919 group. Default: ffdhe2048. Prime 2048 to 8192 bits. */
  dhParams?: DhParameters
  /** TLS 1.2: refuse clients without extended_master_secret (RFC 7627) with handshake_failure. Default true. */
  requireExtendedMasterSecret?: boolean
  /** Use the client's order (cipher suites, groups, signature schemes) instead of ours. Default false. */
  honorClientOrder?: boolean
  /**
   * Protocols we serve, in our preference order. undefined: the client's ALPN extension is ignored.
   * Otherwise the first of ours that the client also offers is selected; no overlap is a fatal
   * no_application_protocol alert. A client that sends no ALPN gets none.
   */
  alpn?: string[]
}

/** Finite-field DH group: big-endian prime and generator, no leading zeros. */
export interface DhParameters {
  p: Uint8Array
  g: Uint8Array
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
}

export interface HandshakeInfo {
  version: string // 'TLSv1.3' or 'TLSv1.2'
  cipherSuite: string // IANA name, e.g. 'TLS_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'
  group: string // e.g. 'x25519', 'ffdhe2048'; 'dh3072' for configured TLS 1.2 DHE parameters of no named group
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
