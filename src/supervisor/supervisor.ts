// The supervisor: listeners, the keyserver, a pool of connection processes, backend connects, logs.
// It never reads a byte of client data: sockets are accepted paused and handed to a connection process.
// Everything a connection process says is untrusted and validated (parseFromConn), and so is the keyserver's reply
// (parseFromKeyserver): a child that names a vhost not meant for its connection, asks for more signatures than a
// handshake needs, or has a signature refused is dropped.
import net from 'node:net'
import type { ChildProcess } from 'node:child_process'
import type { TitusConfig, Vhost } from '../config/index.js'
import { matchVhost } from '../config/match.js'
import { parseFromConn, parseFromKeyserver, type FromConn, type ToConn, type ToKeyserver, type VhostView } from '../ipc/messages.js'
import { SIGNATURES_PER_CONNECTION } from '../keyserver/policy.js'
import { spawnRole } from './children.js'
import { log } from './log.js'
import type { LoadedVhost } from './credentials.js'
import type { SandboxPlan } from './sandbox.js'

// Connections beyond max-children wait here, accepted but unread, as they would in the listen backlog (Node, Bun and
// Deno cannot stop accepting without closing the listener). Bounded like that backlog; beyond it they are closed.
const MAX_WAITING_CONNECTIONS = 511

// One configuration as loaded at start or by a reload. A process serves connections of its own generation only,
// with that generation's vhosts, certificates and keys; the keyserver keeps a generation's keys until no
// connection of it is left.
interface Generation {
  id: number
  config: TitusConfig
  vhosts: LoadedVhost[]
  views: VhostView[]
}

interface ConnChild {
  proc: ChildProcess
  generation: Generation
  ready: boolean
  used: boolean // has been given a connection (strict isolation: never another)
  // We killed it (reload, misbehaviour): it takes nothing more, and its death is not a start-up failure.
  killed: boolean
  // Connections this process serves: at most one in strict isolation, many when pooled.
  conns: Map<number, ActiveConnection>
}

interface ActiveConnection {
  id: number
  started: number
  client: string
  localAddress: string
  localPort: number
  vhost?: Vhost
  serverName?: string
  signatures: number // asked for so far: the supervisor keeps the budget too, a restarted keyserver forgets it
  handshake?: Extract<FromConn, { t: 'handshake' }>
  backendAsked: boolean
  handshakeTimer: ReturnType<typeof setTimeout>
  reported: boolean
}

export class Supervisor {
  private servers: net.Server[] = []
  private readonly children = new Set<ConnChild>()
  // Called when titus cannot go on (connection processes keep failing to start).
  onFatal: (() => void) | undefined
  private waiting: net.Socket[] = []
  private keyserver: ChildProcess | undefined
  private current: Generation
  // Every generation whose keys the keyserver holds: the current one and those with connections left.
  private readonly generations = new Map<number, Generation>()
  private nextGenerationId = 2
  // Generations sent to the keyserver and not yet acknowledged with their signature schemes.
  private readonly keysPending = new Map<number, (schemes: Map<number, number[]>) => void>()
  // Fixed at start: a reload cannot turn one-process-per-connection into shared processes or back.
  private readonly pooled: boolean
  private nextConnId = 1
  private nextSignId = 1
  private readonly signs = new Map<number, { child: ConnChild; conn: number; id: number }>()
  private stopping = false
  private spawnFailures = 0

  constructor(
    config: TitusConfig,
    vhosts: LoadedVhost[],
    private readonly plan: SandboxPlan,
  ) {
    this.current = { id: 1, config, vhosts, views: [] }
    this.generations.set(1, this.current)
    this.pooled = config.isolation === 'pooled'
  }

  // Limits and timeouts in force: the newest configuration's.
  private get config(): TitusConfig {
    return this.current.config
  }

  async start(): Promise<void> {
    await this.startKeyserver()
    for (const { host, port } of this.config.listen) {
      const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, socket => this.accept(socket))
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        // [::] is dual-stack, unless an IPv4 listener shares its port: then each family has a socket of its own.
        const ipv6Only = host === '::' && port !== 0 && this.config.listen.some(l => l.port === port && !l.host.includes(':'))
        server.listen({ host, port, ipv6Only }, () => {
          server.off('error', reject)
          resolve()
        })
      })
      server.on('error', err => log('listener-error', { error: err.message }))
      const a = server.address() as net.AddressInfo
      log(`listening on ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`)
      this.servers.push(server)
    }
    this.fillSpares()
  }

  // Reload: a new generation. New config, certificates and keys apply to new connections, which go to new
  // processes only; live ones keep theirs (and their processes, which take no new client) until they end.
  async reload(config: TitusConfig, vhosts: LoadedVhost[]): Promise<void> {
    const next: Generation = { id: this.nextGenerationId++, config, vhosts, views: [] }
    this.generations.set(next.id, next)
    try {
      if (!this.keyserver) throw new Error('the keyserver is not running')
      await this.sendKeys(this.keyserver, next)
    } catch (err) {
      this.generations.delete(next.id)
      this.toKeyserver({ t: 'retire', generation: next.id })
      throw err
    }
    if (next.id < this.current.id) {
      // A later reload finished first: this one never serves.
      this.generations.delete(next.id)
      this.toKeyserver({ t: 'retire', generation: next.id })
      return
    }
    this.current = next
    for (const c of this.children) if (c.generation !== next && c.conns.size === 0) this.kill(c)
    this.retireFinishedGenerations()
    this.dispatch()
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true
    // Not awaiting close's callback: it waits for every accepted socket, and ours live on in the children.
    for (const server of this.servers) server.close()
    for (const w of this.waiting) w.destroy()
    const idle = () => [...this.children].filter(c => c.conns.size === 0)
    for (const c of idle()) c.proc.kill('SIGKILL')
    const deadline = Date.now() + graceMs
    while (this.active > 0 && Date.now() < deadline) {
      await new Promise(r => setTimeout(r, 50))
      for (const c of idle()) c.proc.kill('SIGKILL')
    }
    for (const c of this.children) c.proc.kill('SIGKILL')
    this.keyserver?.kill('SIGKILL')
  }

  get activeConnections(): number {
    return this.active
  }

  private startKeyserver(): Promise<void> {
    const ks = spawnRole('keyserver', this.plan)
    this.keyserver = ks
    ks.on('message', (raw: unknown) => this.fromKeyserver(ks, raw))
    // A send that races the keyserver's death fails asynchronously; without a listener that would crash us.
    ks.on('error', err => log('keyserver-error', { error: err.message }))
    ks.on('exit', (code, signal) => {
      if (this.keyserver !== ks || this.stopping) return
      log('keyserver-exit', { code: code ?? undefined, signal: signal ?? undefined })
      // Handshakes waiting for a signature fail now; the next ones use a new keyserver.
      for (const [id, s] of this.signs) {
        this.signs.delete(id)
        s.child.proc.send({ t: 'sign-failed', conn: s.conn, id: s.id } satisfies ToConn)
      }
      setTimeout(() => void this.startKeyserver().catch(err => log('keyserver-error', { error: String(err) })), 200)
    })
    // A new keyserver needs the keys of every generation with connections left, not only the newest.
    return Promise.all([...this.generations.values()].map(g => this.sendKeys(ks, g))).then(() => {})
  }

  private sendKeys(ks: ChildProcess, generation: Generation): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!ks.connected) return reject(new Error('the keyserver is not running'))
      const onExit = () => {
        if (this.keysPending.get(generation.id) === taken) this.keysPending.delete(generation.id)
        reject(new Error('the keyserver exited before it took the keys'))
      }
      const taken = (schemes: Map<number, number[]>) => {
        ks.off('exit', onExit)
        generation.views = generation.vhosts.map(v => v.view(schemes.get(v.config.id) ?? []))
        resolve()
      }
      this.keysPending.set(generation.id, taken)
      ks.once('exit', onExit)
      ks.send({ t: 'keys', generation: generation.id, keys: generation.vhosts.map(v => ({ vhost: v.config.id, pem: v.keyPem, versions: { tls12: v.config.tls12, tls13: v.config.tls13 } })) } satisfies ToKeyserver)
    })
  }

  // A generation no process serves a connection of any more: the keyserver drops its keys, and so do we.
  private retireFinishedGenerations() {
    for (const generation of this.generations.values()) {
      // The current one serves new connections; a newer one is a reload whose keys are on their way.
      if (generation.id >= this.current.id) continue
      if ([...this.children].some(c => c.generation === generation && c.conns.size > 0)) continue
      this.generations.delete(generation.id)
      this.toKeyserver({ t: 'retire', generation: generation.id })
    }
  }

  // Between the keyserver's death and its restart there is no one to send to: false then.
  private toKeyserver(m: ToKeyserver): boolean {
    if (!this.keyserver?.connected) return false
    this.keyserver.send(m)
    return true
  }

  private fromKeyserver(ks: ChildProcess, raw: unknown) {
    const m = parseFromKeyserver(raw)
    if (!m) {
      // Restarted by its exit handler, with the keys again.
      log('keyserver-error', { error: 'malformed message from the keyserver' })
      return void ks.kill('SIGKILL')
    }
    if (m.t === 'ready') {
      const taken = this.keysPending.get(m.generation)
      this.keysPending.delete(m.generation)
      return taken?.(new Map(m.schemes.map(s => [s.vhost, s.schemes])))
    }
    const s = this.signs.get(m.id)
    if (!s) return
    this.signs.delete(m.id)
    if (m.t === 'signed') return void s.child.proc.send({ t: 'signed', conn: s.conn, id: s.id, signature: m.signature } satisfies ToConn)
    // The keyserver signs every payload an honest connection process asks for: this one is not honest.
    log('sign-refused', { conn: s.conn, reason: m.reason })
    this.dropChild(s.child, `signature refused: ${m.reason}`)
  }

  private get active(): number {
    let n = 0
    for (const c of this.children) n += c.conns.size
    return n
  }

  // A process of the current generation that can take a connection now: in strict isolation an unused one,
  // pooled the least busy.
  private available(): ConnChild | undefined {
    let best: ConnChild | undefined
    for (const c of this.children) {
      if (!c.ready || c.killed || !c.proc.connected || c.generation !== this.current || (!this.pooled && c.used)) continue
      if (!best || c.conns.size < best.conns.size) best = c
    }
    return best
  }

  private fillSpares() {
    if (this.stopping) return
    let starting = 0
    for (const c of this.children) if (!c.killed && c.generation === this.current && (!c.used || this.pooled)) starting++
    const wanted = this.pooled
      ? Math.max(1, this.config.minSpareChildren)
      : Math.min(this.config.minSpareChildren + this.waiting.length, this.config.maxChildren - this.active)
    for (; starting < wanted; starting++) this.spawnChild()
  }

  private spawnChild() {
    const generation = this.current
    const child: ConnChild = { proc: spawnRole('conn', this.plan), generation, ready: false, used: false, killed: false, conns: new Map() }
    this.children.add(child)
    child.proc.on('message', (raw: unknown) => this.fromConn(child, raw))
    child.proc.on('exit', (code, signal) => this.childExit(child, code, signal))
    child.proc.on('error', err => log('child-error', { error: err.message }))
    child.proc.send({
      t: 'setup',
      vhosts: generation.views,
      maxHandshakeMs: generation.config.maxHandshakeTime * 1000,
      pooled: this.pooled,
    } satisfies ToConn)
  }

  private accept(socket: net.Socket) {
    socket.on('error', () => {}) // a client that resets while waiting must not crash the supervisor
    if (this.stopping) return void socket.destroy()
    // A client that reset before we accepted it has no peer address any more, and nothing to hand over.
    if (socket.remoteAddress === undefined) {
      log('connection', { id: this.nextConnId++, client: 'unknown', ms: 0, outcome: 'client reset before accept' })
      return void socket.destroy()
    }
    if (this.waiting.length >= MAX_WAITING_CONNECTIONS) {
      const client = `${socket.remoteAddress}:${socket.remotePort}`
      log('connection', { id: this.nextConnId++, client, ms: 0, outcome: `closed: ${MAX_WAITING_CONNECTIONS} connections already wait for max-children` })
      return void socket.destroy()
    }
    this.waiting.push(socket)
    this.dispatch()
  }

  private dispatch() {
    while (this.waiting.length > 0 && this.active < this.config.maxChildren) {
      const child = this.available()
      if (!child) break
      const socket = this.waiting.shift()!
      if (!socket.destroyed) this.handOver(child, socket)
    }
    this.fillSpares()
  }

  private handOver(child: ConnChild, socket: net.Socket) {
    const id = this.nextConnId++
    const conn: ActiveConnection = {
      id,
      started: Date.now(),
      client: `${socket.remoteAddress}:${socket.remotePort}`,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      signatures: 0,
      backendAsked: false,
      reported: false,
      // A connection process cannot be trusted to enforce its own deadline.
      handshakeTimer: setTimeout(() => {
        if (!conn.handshake) this.dropConnection(child, conn, 'handshake timeout')
      }, child.generation.config.maxHandshakeTime * 1000 + 500),
    }
    child.used = true
    child.conns.set(id, conn)
    const msg: ToConn = {
      t: 'client',
      conn: id,
      localAddress: conn.localAddress,
      localPort: conn.localPort,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    }
    child.proc.send(msg, socket, err => {
      if (!err) return
      // The socket never left us: close it, or the client waits forever.
      socket.destroy()
      this.dropConnection(child, conn, `hand-over failed: ${err.message}`)
    })
  }

  private fromConn(child: ConnChild, raw: unknown) {
    // What a dropped process said before it died is not acted on (a backend connect, a signature).
    if (child.killed) return
    const m = parseFromConn(raw)
    if (!m) return this.dropChild(child, 'malformed message from connection process')
    if (m.t === 'ready') {
      child.ready = true
      this.spawnFailures = 0
      return this.dispatch()
    }
    const conn = child.conns.get(m.conn)
    if (!conn) return this.dropChild(child, `${m.t} for a connection it does not serve`)
    switch (m.t) {
      case 'vhost': {
        if (conn.vhost) return this.dropChild(child, 'vhost chosen twice')
        // The server name cannot be checked (the supervisor never reads the ClientHello), the rest can: a vhost
        // restricted to another local address or port, or one that no name would pick here, is never allowed.
        const facts = { localAddress: conn.localAddress, localPort: conn.localPort, serverName: m.serverName }
        const vhost = matchVhost(child.generation.config.vhosts, facts)
        if (vhost?.id !== m.vhost) return this.dropChild(child, `vhost ${m.vhost} does not serve this connection`)
        conn.vhost = vhost
        conn.serverName = m.serverName
        return
      }
      case 'sign': {
        if (!conn.vhost) return this.dropChild(child, 'signature asked before a vhost was chosen')
        if (conn.signatures >= SIGNATURES_PER_CONNECTION) return this.dropChild(child, 'signature budget exceeded')
        conn.signatures++
        const id = this.nextSignId++
        const sign: ToKeyserver = { t: 'sign', id, conn: conn.id, generation: child.generation.id, vhost: conn.vhost.id, scheme: m.scheme, message: m.message }
        if (this.toKeyserver(sign)) {
          this.signs.set(id, { child, conn: conn.id, id: m.id })
        } else {
          // The keyserver is restarting: this handshake fails now (an alert) rather than hangs.
          child.proc.send({ t: 'sign-failed', conn: conn.id, id: m.id } satisfies ToConn)
        }
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
        return this.connectBackend(child, conn, conn.vhost)
      case 'done':
        this.report(conn, m.outcome, m.bytesIn, m.bytesOut)
        this.forget(child, conn)
        return
    }
  }

  private connectBackend(child: ConnChild, conn: ActiveConnection, vhost: Vhost) {
    const backend = net.connect({ host: vhost.backend, port: vhost.backendPort, allowHalfOpen: true })
    backend.pause()
    const fail = (err: Error) => child.proc.send({ t: 'backend', conn: conn.id, ok: false, reason: err.message } satisfies ToConn)
    backend.once('error', fail)
    backend.once('connect', () => {
      backend.off('error', fail)
      backend.on('error', () => {})
      child.proc.send({ t: 'backend', conn: conn.id, ok: true } satisfies ToConn, backend, err => {
        if (err) log('backend-handover-failed', { conn: conn.id, error: err.message })
        backend.destroy()
      })
    })
  }

  private report(conn: ActiveConnection, outcome: string, bytesIn?: number, bytesOut?: number) {
    if (conn.reported) return
    conn.reported = true
    this.toKeyserver({ t: 'forget', conn: conn.id })
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

  private forget(child: ConnChild, conn: ActiveConnection) {
    clearTimeout(conn.handshakeTimer)
    child.conns.delete(conn.id)
    for (const [id, s] of this.signs) if (s.child === child && s.conn === conn.id) this.signs.delete(id)
    // A pooled process of an older generation takes no new client: its last connection ends it.
    if (child.generation !== this.current && child.conns.size === 0 && !child.killed) this.kill(child)
    this.retireFinishedGenerations()
    this.dispatch()
  }

  // Strict isolation: the connection's process goes with it. Pooled: so do its other connections,
  // because a process that misbehaves cannot be trusted with any of them.
  private dropConnection(child: ConnChild, conn: ActiveConnection, reason: string) {
    this.report(conn, reason)
    this.dropChild(child, reason)
  }

  private dropChild(child: ConnChild, reason: string) {
    if (child.conns.size === 0) log('child-dropped', { reason })
    for (const conn of child.conns.values()) this.report(conn, reason)
    this.kill(child)
  }

  private kill(child: ConnChild) {
    child.killed = true
    child.proc.kill('SIGKILL')
  }

  private childExit(child: ConnChild, code: number | null, signal: NodeJS.Signals | null) {
    this.children.delete(child)
    if (!this.stopping && !child.ready && !child.killed) {
      // A process that dies before it is ready is a start-up failure; stop respawning when it keeps happening.
      this.spawnFailures++
      log('spare-failed', { code: code ?? undefined, signal: signal ?? undefined })
      if (this.spawnFailures >= 5) {
        log('fatal', { reason: 'connection processes keep failing to start; giving up' })
        this.stopping = true
        this.onFatal?.()
        return
      }
    }
    for (const conn of child.conns.values()) {
      this.report(conn, signal ? `connection process killed by ${signal}` : `connection process exited (${code})`)
      this.forget(child, conn)
    }
    this.dispatch()
  }
}
