// Reading each vhost's certificate chain and private key from disk (supervisor side, before any client), and
// checking that they go together. The key is only passed on to the keyserver; connection processes get the chain.
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ConfigError, type DhParams, type TitusConfig, type Vhost } from '../config/index.js'
import { FFDHE2048_PRIME_HEX, FFDHE3072_PRIME_HEX, FFDHE4096_PRIME_HEX } from '../crypto/ffdhe-primes.js'
import { checkSigningKey, parseCertificateChain } from '../crypto/keys.js'
import { RFC3526_2048_PRIME_HEX, RFC3526_3072_PRIME_HEX, RFC3526_4096_PRIME_HEX } from '../crypto/modp-primes.js'
import type { VhostView } from '../ipc/messages.js'
import { TLS12_SUITES } from '../tls/constants.js'
import { log } from './log.js'

export interface LoadedVhost {
  config: Vhost
  keyPem: string
  view(schemes: number[]): VhostView
}

/** A key or certificate file that cannot serve its vhost: a configuration error, located at the option naming it. */
export class CredentialError extends ConfigError {}

function problemAt(v: Vhost, option: string, problem: string): CredentialError {
  const at = v.locations[option] ?? { file: '<configuration>', line: 0 }
  return new CredentialError(at.file, at.line, option, problem)
}

function readText(v: Vhost, option: 'key' | 'cert', file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw problemAt(v, option, `cannot read ${file}: ${(err as Error).message}`)
  }
}

const KEY_TYPE_NAMES: Record<string, string> = { rsa: 'RSA', ec: 'EC', ed25519: 'Ed25519' }

// Parses the key only to check it (usable, matching the leaf certificate, fitting the TLS 1.2 suites) and lets it go:
// the supervisor keeps the PEM text for the keyserver, never a key object.
function checkKey(v: Vhost, keyPem: string, leaf: X509Certificate): void {
  let key
  try {
    key = createPrivateKey(keyPem)
  } catch (err) {
    const isCertificate = !/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(keyPem) && /-----BEGIN CERTIFICATE-----/.test(keyPem)
    throw problemAt(v, 'key', isCertificate ? `${v.key} holds a certificate, not a private key` : `${v.key} is not a usable private key: ${(err as Error).message}`)
  }
  let authentication
  try {
    authentication = checkSigningKey(key)
  } catch (err) {
    throw problemAt(v, 'key', `${v.key}: ${(err as Error).message}`)
  }
  let matches = false
  try {
    matches = leaf.checkPrivateKey(key)
  } catch {
    // A key of another type than the certificate's: no match.
  }
  if (!matches) throw problemAt(v, 'key', `${v.key} does not match the certificate ${v.cert}`)
  if (!v.tls12 || v.cipherSuites12.some(code => TLS12_SUITES.get(code)?.authentication === authentication)) return
  const problem = `no TLS 1.2 cipher suite fits the ${KEY_TYPE_NAMES[key.asymmetricKeyType!]} key ${v.key} (${authentication} suites needed)`
  if (!v.tls13) throw problemAt(v, 'ciphers', `${problem}, and TLS 1.3 is off: no client could connect`)
  // TLS 1.3 still serves: only TLS 1.2 clients fail (handshake_failure).
  const at = v.locations.ciphers ?? { file: '<configuration>', line: 0 }
  log('config-warning', { file: at.file, line: at.line, option: 'ciphers', problem: `${problem}: TLS 1.2 clients will fail the handshake` })
}

const NAMED_DH_PRIMES: Record<'ffdhe' | 'rfc3526', Record<2048 | 3072 | 4096, string>> = {
  ffdhe: { 2048: FFDHE2048_PRIME_HEX, 3072: FFDHE3072_PRIME_HEX, 4096: FFDHE4096_PRIME_HEX },
  rfc3526: { 2048: RFC3526_2048_PRIME_HEX, 3072: RFC3526_3072_PRIME_HEX, 4096: RFC3526_4096_PRIME_HEX },
}

// The `dhgroup` TLS 1.2 parameters as the engine takes them (prime and generator, base64 for IPC).
function dhParameters(params: DhParams): { p: string; g: string } {
  if (params.kind === 'pem') return { p: Buffer.from(params.p).toString('base64'), g: Buffer.from(params.g).toString('base64') }
  return { p: Buffer.from(NAMED_DH_PRIMES[params.kind][params.bits], 'hex').toString('base64'), g: Buffer.of(2).toString('base64') }
}

export function loadVhosts(config: TitusConfig): LoadedVhost[] {
  return config.vhosts.map(v => {
    let chain: Uint8Array[]
    let leaf: X509Certificate
    try {
      chain = parseCertificateChain(readText(v, 'cert', v.cert))
      leaf = new X509Certificate(chain[0])
    } catch (err) {
      if (err instanceof CredentialError) throw err
      throw problemAt(v, 'cert', `${v.cert}: ${(err as Error).message}`)
    }
    const keyPem = readText(v, 'key', v.key)
    checkKey(v, keyPem, leaf)
    const chainBase64 = chain.map(c => Buffer.from(c).toString('base64'))
    return {
      config: v,
      keyPem,
      view: schemes => ({
        id: v.id,
        match: v.match,
        chain: chainBase64,
        schemes,
        cipherSuites13: v.cipherSuites13,
        cipherSuites12: v.cipherSuites12,
        groups: v.groups,
        honorClientCipherOrder: v.honorClientCipherOrder,
        alpn: v.alpn,
        tls12: v.tls12,
        tls13: v.tls13,
        dhParams: dhParameters(v.dhParams),
        requireExtendedMasterSecret: v.extendedMasterSecret,
      }),
    }
  })
}
