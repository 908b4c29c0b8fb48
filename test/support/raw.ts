// Raw TCP conversations with titus, and a record-rewriting man in the middle for real clients.
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import type { Teardown } from './certs.js'
import { parseRecords, type TlsRecord } from './wire.js'

export interface RawOutcome {
  // Everything the server sent.
  bytes: Buffer
  // How the exchange ended: server FIN, reset, `until` satisfied, or timeout.
  end: 'fin' | 'reset' | 'until' | 'timeout'
}

export interface RawOptions {
  // Send FIN after the payload.
  halfClose?: boolean
  // Stop as soon as this returns true for the bytes received so far.
  until?: (received: Buffer) => boolean
  timeoutMs?: number
}

// Connects, writes each payload chunk in its own write, and collects what the server sends back.
export function rawExchange(port: number, payload: Buffer | Buffer[], options: RawOptions = {}): Promise<RawOutcome> {
  return new Promise(resolve => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    let done = false
    const finish = (end: RawOutcome['end']) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ bytes: Buffer.concat(chunks), end })
    }
    const timer = setTimeout(() => finish('timeout'), options.timeoutMs ?? 5000)
    socket.on('connect', () => {
      for (const chunk of Array.isArray(payload) ? payload : [payload]) socket.write(chunk)
      if (options.halfClose) socket.end()
    })
    socket.on('data', (b: Buffer) => {
      chunks.push(b)
      if (options.until?.(Buffer.concat(chunks))) finish('until')
    })
    socket.on('end', () => finish('fin'))
    socket.on('error', () => finish('reset'))
  })
}

// Rewrites one client record into the bytes to send upstream instead.
export type RecordRewrite = (record: TlsRecord, index: number) => Buffer

// Listens on an ephemeral port; forwards each connection to targetPort, passing every whole record the client
// sends through rewrite. Server bytes pass unchanged; half-closes are mirrored.
export async function startRecordProxy(t: Teardown, targetPort: number, rewrite: RecordRewrite): Promise<{ port: number }> {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, client => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true })
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
    }
    let pending = Buffer.alloc(0)
    let index = 0
    client.on('data', (b: Buffer) => {
      const { records, rest } = parseRecords(Buffer.concat([pending, b]))
      pending = Buffer.from(rest)
      for (const r of records) upstream.write(rewrite(r, index++))
    })
    client.on('end', () => upstream.end(pending))
    upstream.pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  t.teardown(
    () =>
      new Promise<void>(resolve => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as AddressInfo).port }
}
