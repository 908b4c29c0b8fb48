// The supervisor: listeners, the keyserver, a pool of connection processes, backend connects, logs.
// It never reads a byte of client data: sockets are accepted paused and handed to a connection process.
// Everything a connection process says is untrusted and validated (parseFromConn).
import net from 'node:net'
import type { ChildProcess } from 'node:child_process'
import type { TitusConfig, Vhost } from '../config/index.js'
import { parseFromConn, type FromConn, type FromKeyserver, type ToConn, type ToKeyserver, type VhostView } from '../ipc/messages.js'
import { spawnRole } from './children.js'
import { log } from './log.js'
import type { LoadedVhost } from './credentials.js'

interface ConnChild {
  proc: ChildProcess
  ready: boolean
  conn?: ActiveConnection
}

interface ActiveConnection {
  id: number
  started: number
  client: string
  vhost?: Vhost
  serverName?: string
  handshake?: Extract<FromConn, { t: 'handshake' }>
  backendAsked: boolean
  signatures: number
  handshakeTimer: ReturnType<typeof setTimeout>
  reported: boolean
}

export class Supervisor {
  private servers: net.Server[] = []
  private spares: ConnChild[] = []
  private readonly busy = new Set<ConnChild>()
  private waiting: net.Socket[] = []
  private keyserver: ChildProcess | undefined
  private keyserverReady: Promise<void> = Promise.resolve()
  private views: VhostView[] = []
  private nextConnId = 1
  private nextSignId = 1
  private readonly signs = new Map<number, { child: ConnChild; id: number }>()
  private stopping = false
  private spawnFailures = 0

  constructor(
    private config: TitusConfig,
    private vhosts: LoadedVhost[],
  ) {}

  async start(): Promise<void> {
    await this.startKeyserver()
    for (const { host, port } of this.config.listen) {
      const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, socket => this.accept(socket))
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host, port, ipv6Only: false }, () => {
          server.off('error', reject)
          resolve()
        })
      })
      server.on('error', err => log('listener-error', { error: err.message }))
      const a = server.address() as net.AddressInfo
      log('listening', { address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}` })
      process.stderr.write(`titus: listening on ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}\n`)
      this.servers.push(server)
    }
    this.fillSpares()
  }

  // Reload: new config, certificates and keys apply to new connections; live ones keep theirs.
  async reload(config: TitusConfig, vhosts: LoadedVhost[]): Promise<void> {
    this.config = config
    this.vhosts = vhosts
    await this.sendKeys()
    for (const s of this.spares) s.proc.kill('SIGKILL')
    this.spares = []
    this.fillSpares()
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true
    await Promise.all(this.servers.map(s => new Promise(r => s.close(r))))
    for (const s of this.spares) s.proc.kill('SIGKILL')
    for (const w of this.waiting) w.destroy()
    const deadline = Date.now() + graceMs
    while (this.busy.size > 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
    for (const c of this.busy) c.proc.kill('SIGKILL')
    this.keyserver?.kill('SIGKILL')
  }

  get activeConnections(): number {
    return this.busy.size
  }

  private startKeyserver(): Promise<void> {
    const ks = spawnRole('keyserver')
    this.keyserver = ks
    ks.on('message', (m: FromKeyserver) => this.fromKeyserver(m))
    ks.on('exit', (code, signal) => {
      if (this.keyserver !== ks || this.stopping) return
      log('keyserver-exit', { code: code ?? undefined, signal: signal ?? undefined })
      // Handshakes waiting for a signature fail now; the next ones use a new keyserver.
      for (const [id, s] of this.signs) {
        this.signs.delete(id)
        s.child.proc.send({ t: 'sign-failed', id: s.id } satisfies ToConn)
      }
      setTimeout(() => void this.startKeyserver().catch(err => log('keyserver-error', { error: String(err) })), 200)
    })
    return (this.keyserverReady = this.sendKeys())
  }

  private sendKeys(): Promise<void> {
    const ks = this.keyserver!
    return new Promise((resolve, reject) => {
      const onReady = (m: FromKeyserver) => {
        if (m.t !== 'ready') return
        ks.off('message', onReady)
        const schemes = new Map(m.schemes.map(s => [s.vhost, s.schemes]))
        this.views = this.vhosts.map(v => v.view(schemes.get(v.config.id) ?? []))
        resolve()
      }
      ks.on('message', onReady)
      ks.once('exit', () => reject(new Error('the keyserver exited during start-up')))
      ks.send({ t: 'keys', keys: this.vhosts.map(v => ({ vhost: v.config.id, pem: v.keyPem })) } satisfies ToKeyserver)
    })
  }

  private fromKeyserver(m: FromKeyserver) {
    if (m.t === 'ready') return
    const s = this.signs.get(m.id)
    if (!s) return
    this.signs.delete(m.id)
    if (m.t === 'signed') s.child.proc.send({ t: 'signed', id: s.id, signature: m.signature } satisfies ToConn)
    else {
      log('sign-refused', { conn: s.child.conn?.id, reason: m.reason })
      s.child.proc.send({ t: 'sign-failed', id: s.id } satisfies ToConn)
    }
  }

  private fillSpares() {
    if (this.stopping) return
    const wanted = Math.min(this.config.minSpareChildren + this.waiting.length, this.config.maxChildren - this.busy.size)
    while (this.spares.length < wanted) this.spawnSpare()
  }

  private spawnSpare() {
    const child: ConnChild = { proc: spawnRole('conn'), ready: false }
    this.spares.push(child)
    child.proc.on('message', (raw: unknown) => this.fromConn(child, raw))
    child.proc.on('exit', (code, signal) => this.childExit(child, code, signal))
    child.proc.on('error', err => log('child-error', { error: err.message }))
    child.proc.send({ t: 'setup', vhosts: this.views, maxHandshakeMs: this.config.maxHandshakeTime * 1000 } satisfies ToConn)
  }

  private accept(socket: net.Socket) {
    socket.on('error', () => {}) // a client that resets while waiting must not crash the supervisor
    if (this.stopping) return void socket.destroy()
    this.waiting.push(socket)
    this.dispatch()
  }

  private dispatch() {
    while (this.waiting.length > 0 && this.busy.size < this.config.maxChildren) {
      const i = this.spares.findIndex(s => s.ready)
      if (i < 0) break
      const child = this.spares.splice(i, 1)[0]!
      const socket = this.waiting.shift()!
      if (socket.destroyed) {
        this.spares.push(child)
        continue
      }
      this.handOver(child, socket)
    }
    this.fillSpares()
  }

  private handOver(child: ConnChild, socket: net.Socket) {
    const id = this.nextConnId++
    const conn: ActiveConnection = {
      id,
      started: Date.now(),
      client: `${socket.remoteAddress}:${socket.remotePort}`,
      backendAsked: false,
      signatures: 0,
      reported: false,
      // A connection process cannot be trusted to enforce its own deadline.
      handshakeTimer: setTimeout(() => {
        if (!conn.handshake) this.dropChild(child, 'handshake timeout')
      }, this.config.maxHandshakeTime * 1000 + 500),
    }
    child.conn = conn
    this.busy.add(child)
    const msg: ToConn = {
      t: 'client',
      conn: id,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    }
    child.proc.send(msg, socket, err => {
      if (err) this.dropChild(child, `hand-over failed: ${err.message}`)
    })
  }

  private fromConn(child: ConnChild, raw: unknown) {
    const m = parseFromConn(raw)
    const conn = child.conn
    if (!m) return this.dropChild(child, 'malformed message from connection process')
    if (m.t === 'ready') {
      child.ready = true
      this.spawnFailures = 0
      return this.dispatch()
    }
    if (!conn) return this.dropChild(child, `unexpected ${m.t} before a connection`)
    switch (m.t) {
      case 'vhost': {
        const vhost = this.config.vhosts.find(v => v.id === m.vhost)
        if (conn.vhost || !vhost) return this.dropChild(child, 'bad vhost choice')
        conn.vhost = vhost
        conn.serverName = m.serverName
        return
      }
      case 'sign': {
        if (!conn.vhost || !this.keyserver) return this.dropChild(child, 'signature asked before a vhost was chosen')
        const id = this.nextSignId++
        this.signs.set(id, { child, id: m.id })
        this.keyserver.send({ t: 'sign', id, conn: conn.id, vhost: conn.vhost.id, scheme: m.scheme, message: m.message } satisfies ToKeyserver)
        return
      }
      case 'handshake':
        if (!conn.vhost || conn.handshake) return this.dropChild(child, 'unexpected handshake report')
        conn.handshake = m
        clearTimeout(conn.handshakeTimer)
        return
      case 'backend':
        if (!conn.vhost || !conn.handshake || conn.backendAsked) return this.dropChild(child, 'unexpected backend request')
        conn.backendAsked = true
        return this.connectBackend(child, conn.vhost)
      case 'done':
        this.report(conn, m.outcome, m.bytesIn, m.bytesOut)
        return
    }
  }

  private connectBackend(child: ConnChild, vhost: Vhost) {
    const backend = net.connect({ host: vhost.backend, port: vhost.backendPort, allowHalfOpen: true })
    backend.pause()
    const fail = (err: Error) => child.proc.send({ t: 'backend', ok: false, reason: err.message } satisfies ToConn)
    backend.once('error', fail)
    backend.once('connect', () => {
      backend.off('error', fail)
      backend.on('error', () => {})
      child.proc.send({ t: 'backend', ok: true } satisfies ToConn, backend, err => {
        if (err) log('backend-handover-failed', { conn: child.conn?.id, error: err.message })
        backend.destroy()
      })
    })
  }

  private report(conn: ActiveConnection, outcome: string, bytesIn?: number, bytesOut?: number) {
    if (conn.reported) return
    conn.reported = true
    this.keyserver?.send({ t: 'forget', conn: conn.id } satisfies ToKeyserver)
    log('connection', {
      id: conn.id,
      client: conn.client,
      vhost: conn.vhost?.id,
      sni: conn.serverName,
      version: conn.handshake?.version,
      suite: conn.handshake?.suite,
      group: conn.handshake?.group,
      alpn: conn.handshake?.alpn,
      bytes_in: bytesIn,
      bytes_out: bytesOut,
      ms: Date.now() - conn.started,
      outcome,
    })
  }

  private dropChild(child: ConnChild, reason: string) {
    if (child.conn) this.report(child.conn, reason)
    else log('child-dropped', { reason })
    child.proc.kill('SIGKILL')
  }

  private childExit(child: ConnChild, code: number | null, signal: NodeJS.Signals | null) {
    const spare = this.spares.indexOf(child)
    if (spare >= 0) {
      this.spares.splice(spare, 1)
      if (!this.stopping && !child.ready) {
        // A spare that dies before it is ready is a start-up failure; stop respawning when it keeps happening.
        this.spawnFailures++
        log('spare-failed', { code: code ?? undefined, signal: signal ?? undefined })
        if (this.spawnFailures >= 5) {
          log('fatal', { reason: 'connection processes keep failing to start; giving up' })
          process.kill(process.pid, 'SIGTERM')
          return
        }
      }
    }
    if (child.conn) {
      clearTimeout(child.conn.handshakeTimer)
      this.report(child.conn, signal ? `connection process killed by ${signal}` : `connection process exited (${code})`)
      for (const [id, s] of this.signs) if (s.child === child) this.signs.delete(id)
    }
    this.busy.delete(child)
    this.dispatch()
  }
}
