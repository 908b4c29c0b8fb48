// The connection process: receives client sockets from the supervisor, runs the TLS handshake with the
// keyserver as signer, asks the supervisor for the backend, pumps bytes, and reports. In strict isolation
// it serves one connection and exits; pooled, it serves many.
import type { Socket } from 'node:net'
import type { FromConn, ToConn, VhostView } from '../ipc/messages.js'
import { Connection } from './connection.js'
import { IpcSigner } from './ipc-signer.js'
import { matchVhost } from '../config/match.js'
import { ProtocolVersion } from '../tls/index.js'

interface Served {
  signer?: IpcSigner
  backendWaiter?: (s: Socket | string) => void
}

export function runConnectionProcess(): void {
  const send = (m: FromConn) => process.send!(m)
  let vhosts: VhostView[] = []
  let maxHandshakeMs = 10_000
  let pooled = false
  let servedAny = false
  const served = new Map<number, Served>()

  process.on('message', (raw: unknown, handle?: unknown) => {
    const m = raw as ToConn
    switch (m.t) {
      case 'setup':
        vhosts = m.vhosts
        maxHandshakeMs = m.maxHandshakeMs
        pooled = m.pooled
        send({ t: 'ready' })
        break
      case 'client':
        // Strict isolation: one connection per process, ever.
        if ((servedAny && !pooled) || !handle) process.exit(70)
        servedAny = true
        serve(m, handle as Socket)
        break
      case 'backend': {
        const s = served.get(m.conn)
        const waiter = s?.backendWaiter
        if (s) s.backendWaiter = undefined
        if (m.ok && handle) waiter?.(handle as Socket)
        else {
          if (handle) (handle as Socket).destroy()
          waiter?.(m.ok ? 'no socket' : m.reason)
        }
        break
      }
      case 'signed':
      case 'sign-failed':
        served.get(m.conn)?.signer?.settle(m.id, m.t === 'signed' ? m.signature : undefined)
        break
    }
  })
  process.on('disconnect', () => process.exit(0))

  function serve(m: Extract<ToConn, { t: 'client' }>, client: Socket) {
    const conn = m.conn
    const state: Served = {}
    served.set(conn, state)
    new Connection(
      client,
      {
        selectCredential(hello) {
          const chosen = matchVhost(vhosts, { localAddress: m.localAddress, localPort: m.localPort, serverName: hello.serverName })
          if (!chosen) return undefined
          send({ t: 'vhost', conn, vhost: chosen.id, serverName: hello.serverName })
          state.signer = new IpcSigner(chosen.schemes, conn, send)
          // TLS policy is per vhost, and the vhost is known only now: it travels with the credential.
          return {
            chain: chosen.chain.map(c => Buffer.from(c, 'base64')),
            signer: state.signer,
            versions: [...(chosen.tls13 ? [ProtocolVersion.tls13] : []), ...(chosen.tls12 ? [ProtocolVersion.tls12] : [])],
            cipherSuites: chosen.cipherSuites13,
            cipherSuites12: chosen.cipherSuites12,
            groups: chosen.groups,
            dhParams: { p: Buffer.from(chosen.dhParams.p, 'base64'), g: Buffer.from(chosen.dhParams.g, 'base64') },
            requireExtendedMasterSecret: chosen.requireExtendedMasterSecret,
            honorClientOrder: chosen.honorClientCipherOrder,
            alpn: chosen.alpn,
          }
        },
      },
      maxHandshakeMs,
      {
        connectBackend: () =>
          new Promise(resolve => {
            state.backendWaiter = resolve
            send({ t: 'backend', conn })
          }),
        handshake: info => send({ t: 'handshake', conn, ...info }),
        done: result => {
          served.delete(conn)
          send({ t: 'done', conn, ...result })
          if (!pooled) {
            process.disconnect?.()
            setTimeout(() => process.exit(0), 50).unref?.()
          }
        },
      },
    )
  }
}
