// Reading each vhost's certificate chain and private key from disk (supervisor side, before any client).
// The key is only passed on to the keyserver; connection processes get the public chain.
import { readFileSync } from 'node:fs'
import type { DhParams, TitusConfig, Vhost } from '../config/index.js'
import { FFDHE2048_PRIME_HEX, FFDHE3072_PRIME_HEX, FFDHE4096_PRIME_HEX } from '../crypto/ffdhe-primes.js'
import { parseCertificateChain } from '../crypto/keys.js'
import { RFC3526_2048_PRIME_HEX, RFC3526_3072_PRIME_HEX, RFC3526_4096_PRIME_HEX } from '../crypto/modp-primes.js'
import type { VhostView } from '../ipc/messages.js'

export interface LoadedVhost {
  config: Vhost
  keyPem: string
  view(schemes: number[]): VhostView
}

export class CredentialError extends Error {}

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
    let keyPem: string
    try {
      chain = parseCertificateChain(readFileSync(v.cert, 'utf8'))
    } catch (err) {
      throw new CredentialError(`${v.cert}: ${(err as Error).message}`)
    }
    if (chain.length === 0) throw new CredentialError(`${v.cert}: no certificate found`)
    try {
      keyPem = readFileSync(v.key, 'utf8')
    } catch (err) {
      throw new CredentialError(`${v.key}: ${(err as Error).message}`)
    }
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
