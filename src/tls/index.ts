export { TlsServer } from './server.js'
export type { ClientHelloInfo, Credential, HandshakeInfo, Signer, TlsEvent, TlsOutput, TlsPolicy, TlsServerOptions } from './server.js'
export { AlertDescription, alertName } from './alerts.js'
export { CipherSuite, NamedGroup, ProtocolVersion, SignatureScheme } from './constants.js'
