// Reading each vhost's certificate chain and private key from disk (supervisor side, before any client).
// The key is only passed on to the keyserver; connection processes get the public chain.
import { readFileSync } from 'node:fs'
import type { TitusConfig, Vhost } from '../config/index.js'
import { parseCertificateChain } from '../crypto/keys.js'
import type { VhostView } from '../ipc/messages.js'

export interface LoadedVhost {
  config: Vhost
  keyPem: string
  view(schemes: number[]): VhostView
}

export class CredentialError extends Error {}

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
      }),
    }
  })
}
