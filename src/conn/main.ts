// The connection process: receives client sockets from the supervisor, runs the TLS handshake with the
// keyserver as signer, asks the supervisor for the backend, pumps bytes, reports, and (strict isolation)
// exits after its one connection.
import type { Socket } from 'node:net'
import type { Credential } from '../tls/index.js'
import type { FromConn, ToConn, VhostView } from '../ipc/messages.js'
import { Connection } from './connection.js'
import { IpcSigner } from './ipc-signer.js'
import { matchVhost } from '../config/match.js'

export function runConnectionProcess(): void {
  const send = (m: FromConn) => process.send!(m)
  let vhosts: VhostView[] = []
  let maxHandshakeMs = 10_000
  let signer: IpcSigner | undefined
  let backendWaiter: ((s: Socket | string) => void) | undefined
  let busy = false

  process.on('message', (raw: unknown, handle?: unknown) => {
    const m = raw as ToConn
    switch (m.t) {
      case 'setup':
        vhosts = m.vhosts
        maxHandshakeMs = m.maxHandshakeMs
        send({ t: 'ready' })
        break
      case 'client':
        if (busy || !handle) process.exit(70)
        busy = true
        serve(m, handle as Socket)
        break
      case 'backend': {
        const waiter = backendWaiter
        backendWaiter = undefined
        if (m.ok && handle) waiter?.(handle as Socket)
        else waiter?.(m.ok ? 'no socket' : m.reason)
        break
      }
      case 'signed':
        signer?.settle(m.id, m.signature)
        break
      case 'sign-failed':
        signer?.settle(m.id, undefined)
        break
    }
  })
  process.on('disconnect', () => process.exit(0))

  function serve(m: Extract<ToConn, { t: 'client' }>, client: Socket) {
    let chosen: VhostView | undefined
    new Connection(
      client,
      {
        selectCredential(hello): Credential | undefined {
          chosen = matchVhost(vhosts, { localAddress: m.localAddress, localPort: m.localPort, serverName: hello.serverName })
          if (!chosen) return undefined
          send({ t: 'vhost', vhost: chosen.id, serverName: hello.serverName })
          signer = new IpcSigner(chosen.schemes, send)
          // TLS policy is per vhost, and the vhost is known only now: it travels with the credential.
          return {
            chain: chosen.chain.map(c => Buffer.from(c, 'base64')),
            signer,
            cipherSuites: chosen.cipherSuites13,
            groups: chosen.groups,
            honorClientOrder: chosen.honorClientCipherOrder,
            alpn: chosen.alpn,
          }
        },
      },
      maxHandshakeMs,
      {
        connectBackend: () =>
          new Promise(resolve => {
            backendWaiter = resolve
            send({ t: 'backend' })
          }),
        handshake: info => send({ t: 'handshake', ...info }),
        done: result => {
          send({ t: 'done', ...result })
          // Strict isolation: this process served its one connection.
          process.disconnect?.()
          setTimeout(() => process.exit(0), 50)
        },
      },
    )
  }
}
