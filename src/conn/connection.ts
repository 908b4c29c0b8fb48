// One client connection: TLS engine in the middle, the client socket on one side, the backend on the other.
// Connection state is mirrored both ways, as in titus: close_notify or FIN from one side becomes a
// half-close toward the other, a reset becomes a reset, and backpressure on either side pauses the other.
import type { Socket } from 'node:net'
import { TlsServer, type TlsOutput, type TlsServerOptions } from '../tls/index.js'

export interface ConnectionHooks {
  // Ask for the backend once the handshake is done; resolves to the connected socket or a reason.
  connectBackend(): Promise<Socket | string>
  handshake(info: { version: string; suite: string; group: string; alpn?: string }): void
  done(result: { outcome: string; bytesIn: number; bytesOut: number }): void
}

export class Connection {
  private readonly tls: TlsServer
  private backend: Socket | undefined
  private backendPending: Uint8Array[] = []
  private clientEnded = false // no more plaintext will come from the client (close_notify or FIN)
  private finished = false
  private backendRequested = false
  private backendSettled = false
  private outcome = 'closed'
  private bytesIn = 0 // plaintext client → backend
  private bytesOut = 0 // plaintext backend → client
  private feeding: Promise<void> = Promise.resolve()
  private readonly handshakeTimer: ReturnType<typeof setTimeout>

  constructor(
    private readonly client: Socket,
    options: TlsServerOptions,
    maxHandshakeMs: number,
    private readonly hooks: ConnectionHooks,
  ) {
    this.tls = new TlsServer(options)
    client.allowHalfOpen = true
    client.on('data', chunk => this.fromClient(chunk as Buffer))
    client.on('end', () => this.clientFin())
    client.on('error', err => this.clientError(err))
    client.on('close', () => this.maybeFinish())
    this.handshakeTimer = setTimeout(() => this.abort('handshake timeout'), maxHandshakeMs)
    this.handshakeTimer.unref?.()
  }

  private fromClient(chunk: Buffer) {
    // Feeds are chained so outputs are applied in order; the client is paused while the engine works
    // so a fast client cannot queue unbounded work.
    this.client.pause()
    this.feeding = this.feeding.then(async () => {
      const out = await this.tls.feed(chunk)
      this.apply(out)
      if (!this.backend || !this.backend.writableNeedDrain) this.client.resume()
    })
  }

  private apply(out: TlsOutput) {
    this.sendToClient(out.toClient)
    for (const p of out.plaintext) this.toBackend(p)
    for (const e of out.events) {
      switch (e.type) {
        case 'handshake':
          clearTimeout(this.handshakeTimer)
          this.hooks.handshake({ version: e.info.version, suite: e.info.cipherSuite, group: e.info.group, alpn: e.info.alpn })
          void this.attachBackend()
          break
        case 'close_notify':
          this.endBackendWrite()
          break
        case 'alert':
          if (e.level === 'fatal') this.outcome = `${e.sent ? 'sent' : 'received'} alert ${e.name}`
          break
        case 'error':
          if (this.outcome === 'closed') this.outcome = `error: ${e.message}`
          this.abortAfterFlush()
          break
      }
    }
  }

  private sendToClient(records: Uint8Array[]) {
    if (records.length === 0 || this.client.destroyed || !this.client.writable) return
    if (records.length === 1) this.client.write(records[0]!)
    else {
      this.client.cork()
      for (const r of records) this.client.write(r)
      this.client.uncork()
    }
  }

  private toBackend(p: Uint8Array) {
    this.bytesIn += p.length
    if (!this.backend) {
      this.backendPending.push(p)
      return
    }
    if (!this.backend.write(p)) this.client.pause()
  }

  private async attachBackend() {
    this.backendRequested = true
    const result = await this.hooks.connectBackend()
    this.backendSettled = true
    if (typeof result === 'string') {
      this.outcome = `backend unavailable: ${result}`
      // As in titus: a backend that refuses drops the client.
      this.client.destroy()
      this.maybeFinish()
      return
    }
    const backend = (this.backend = result)
    backend.allowHalfOpen = true
    if (this.client.destroyed) {
      backend.destroy()
      this.maybeFinish()
      return
    }
    backend.on('data', chunk => this.fromBackend(chunk as Buffer))
    backend.on('end', () => this.backendFin())
    backend.on('error', err => this.backendError(err))
    backend.on('close', () => this.maybeFinish())
    backend.on('drain', () => this.client.resume())
    this.client.on('drain', () => backend.resume())
    for (const p of this.backendPending) backend.write(p)
    this.backendPending = []
    if (this.clientEnded) backend.end()
  }

  private fromBackend(chunk: Buffer) {
    if (this.tls.closed) return
    this.bytesOut += chunk.length
    this.sendToClient(this.tls.write(chunk).toClient)
    if (this.client.writableNeedDrain) this.backend!.pause()
  }

  private backendFin() {
    // Backend shut its write side: close_notify then FIN toward the client.
    if (!this.tls.closed) this.sendToClient(this.tls.close().toClient)
    if (!this.client.destroyed) this.client.end()
    this.maybeFinish()
  }

  private clientFin() {
    void this.feeding.then(() => this.endBackendWrite())
  }

  private endBackendWrite() {
    if (this.clientEnded) return
    this.clientEnded = true
    if (this.backend && !this.backend.destroyed) this.backend.end()
    else if (!this.tls.handshakeComplete) this.client.destroy()
    this.maybeFinish()
  }

  private clientError(err: NodeJS.ErrnoException) {
    this.outcome = err.code === 'ECONNRESET' ? 'client reset' : `client error: ${err.message}`
    if (this.backend && !this.backend.destroyed) reset(this.backend)
    this.maybeFinish()
  }

  private backendError(err: NodeJS.ErrnoException) {
    this.outcome = err.code === 'ECONNRESET' ? 'backend reset' : `backend error: ${err.message}`
    if (!this.client.destroyed) reset(this.client)
    this.maybeFinish()
  }

  private abortAfterFlush() {
    clearTimeout(this.handshakeTimer)
    this.backend?.destroy()
    if (!this.client.destroyed) this.client.end()
    // The peer may never read our alert; do not wait for it forever.
    setTimeout(() => this.client.destroy(), 1000).unref?.()
  }

  abort(outcome: string) {
    this.outcome = outcome
    this.client.destroy()
    this.backend?.destroy()
    this.maybeFinish()
  }

  private maybeFinish() {
    // Done once both sockets have fully closed (or the backend was never reached).
    if (this.finished || !this.client.destroyed) return
    if (this.backendRequested && !this.backendSettled) return
    if (this.backend && !this.backend.destroyed) return
    this.finished = true
    clearTimeout(this.handshakeTimer)
    this.hooks.done({ outcome: this.outcome, bytesIn: this.bytesIn, bytesOut: this.bytesOut })
  }
}

function reset(socket: Socket) {
  // resetAndDestroy sends RST (SO_LINGER 0); runtimes without it fall back to a plain close.
  const s = socket as Socket & { resetAndDestroy?: () => void }
  if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy()
  else socket.destroy()
}
