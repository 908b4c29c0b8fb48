// The keyserver process: holds the private keys, signs checked payloads for connections, nothing else.
// It talks only to the supervisor over the IPC channel; the supervisor names the connection and its vhost.
import { createLocalSigner } from '../crypto/keys.js'
import type { Signer } from '../tls/index.js'
import type { FromKeyserver, ToKeyserver } from '../ipc/messages.js'
import { checkSignPayload, SIGNATURES_PER_CONNECTION, type SignableVersions } from './policy.js'

export function runKeyserver(): void {
  // generation → vhost → signer. A reload adds a generation; the previous ones stay until the supervisor retires
  // them, so that a handshake in flight is signed with the key that goes with the certificate it was sent.
  const generations = new Map<number, Map<number, { signer: Signer; versions: SignableVersions }>>()
  const used = new Map<number, number>() // connection id → signatures made
  const send = (m: FromKeyserver) => process.send!(m)

  process.on('message', (raw: unknown) => {
    const m = raw as ToKeyserver
    switch (m.t) {
      case 'keys': {
        const signers = new Map(m.keys.map(({ vhost, pem, versions }) => [vhost, { signer: createLocalSigner(pem), versions }]))
        generations.set(m.generation, signers)
        send({ t: 'ready', generation: m.generation, schemes: [...signers].map(([vhost, s]) => ({ vhost, schemes: [...s.signer.schemes] })) })
        break
      }
      case 'retire':
        // Dropping the signers drops their key objects: JS gives no way to overwrite a KeyObject or a string.
        generations.delete(m.generation)
        break
      case 'sign':
        void sign(m)
        break
      case 'forget':
        used.delete(m.conn)
        break
    }
  })
  // The supervisor is gone: nothing left to serve.
  process.on('disconnect', () => process.exit(0))

  async function sign(m: Extract<ToKeyserver, { t: 'sign' }>) {
    // The supervisor logs the refusal (in the configured log format) and drops the connection.
    const refuse = (reason: string) => send({ t: 'refused', id: m.id, reason })
    const key = generations.get(m.generation)?.get(m.vhost)
    if (!key) return refuse(`no key for vhost ${m.vhost} (generation ${m.generation})`)
    const { signer, versions } = key
    if (!signer.schemes.includes(m.scheme)) return refuse(`scheme 0x${m.scheme.toString(16)} does not fit the key`)
    const count = used.get(m.conn) ?? 0
    if (count >= SIGNATURES_PER_CONNECTION) return refuse('signature budget exhausted')
    const message = Buffer.from(m.message, 'base64')
    const problem = checkSignPayload(message, m.scheme, versions)
    if (problem) return refuse(problem)
    used.set(m.conn, count + 1)
    try {
      const signature = await signer.sign(m.scheme, message)
      send({ t: 'signed', id: m.id, signature: Buffer.from(signature).toString('base64') })
    } catch (err) {
      refuse(`signing failed: ${(err as Error).message}`)
    }
  }
}
