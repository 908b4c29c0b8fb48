// Drivers for real TLS clients: openssl s_client, gnutls-cli, curl, node:tls and (TLS 1.2) python3's ssl. Each connects
// to 127.0.0.1:port, verifies the server's chain against the test CA, sends data and reads the echo back, and reports
// what was negotiated. With `tls12` they speak TLS 1.2 only, else TLS 1.3 only.
import { randomBytes } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import { bulkData, readAll, writeAll } from './backends.js'
import type { Teardown } from './certs.js'
import { exited, run, sleep, spawnTracked } from './process.js'
import {
  alpnFromEncryptedExtensions,
  groupOfServerKeyExchange,
  HANDSHAKE_TYPE,
  nameOfGroup,
  nameOfSuite,
  nameOfSuite12,
  opensslSuiteName,
  parseServerHello,
  suite12OfOpensslName,
  SUITE12_NAMES,
  type GroupName,
  type ServerHelloInfo,
  SUITE_NAMES,
  type Suite12Name,
  type SuiteName,
} from './wire.js'

export const CLIENT_NAMES = ['openssl', 'gnutls', 'curl', 'node'] as const
export type ClientName = (typeof CLIENT_NAMES)[number]
// python3's ssl module cannot choose TLS 1.3 suites or groups, so it drives TLS 1.2 only.
export const CLIENT12_NAMES = [...CLIENT_NAMES, 'python'] as const
export type Client12Name = (typeof CLIENT12_NAMES)[number]

const isSuite12 = (suite: SuiteName | Suite12Name | undefined): suite is Suite12Name => SUITE12_NAMES.includes(suite as Suite12Name)

export interface ClientOptions {
  port: number
  caFile: string
  // SNI; default localhost (the name in the test certificates).
  servername?: string
  // Offered groups, in order; the first gets a key share. Default: the client's own list.
  groups?: GroupName[]
  // The only suite offered (a TLS 1.2 suite with tls12). Default: the client's own list.
  suite?: SuiteName | Suite12Name
  // Speak TLS 1.2 only instead of TLS 1.3 only.
  tls12?: boolean
  alpn?: string[]
  // Sent after the handshake; the echo of it is expected back. Default: 4 KiB of random bytes.
  input?: Buffer
  timeoutMs?: number
}

export interface ClientResult {
  client: Client12Name
  // Handshake, chain verification and the full echo all succeeded, and the client exited cleanly.
  ok: boolean
  received: Buffer
  suite?: SuiteName | Suite12Name
  // Negotiated protocol version ('TLSv1.2', 'TLSv1.3'), when the client can tell.
  version?: string
  // Negotiated group, when the client can tell.
  group?: GroupName
  alpn?: string | null
  // Fatal alert received from the server.
  alert?: number
  // Everything the client said, for failure messages.
  detail: string
}

const DEFAULT_TIMEOUT_MS = 20000

function defaultInput(): Buffer {
  return randomBytes(4096)
}

// One client-side step: bytes to send whose echo must come back before the next step, or a command line for the
// client (followed by a pause so that the client reads it alone).
export type Step = Buffer | { line: string }

interface Conversation {
  stdout: Buffer
  stderr: string
  code: number | null
  signal: string | null
  timedOut: boolean
}

// Runs an interactive client: feeds each step on stdin, waits for echoes, then closes stdin and waits for exit.
async function converse(t: Teardown, command: string, args: string[], steps: Step[], timeoutMs: number): Promise<Conversation> {
  const child = spawnTracked(t, command, args)
  const stdout: Buffer[] = []
  let stdoutBytes = 0
  let stderr = ''
  let wake = () => {}
  child.stdout!.on('data', (b: Buffer) => {
    stdout.push(b)
    stdoutBytes += b.length
    wake()
  })
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (s: string) => (stderr += s))
  child.stdin!.on('error', () => {})
  let gone = false
  const exit = exited(child).then(e => {
    gone = true
    wake()
    return e
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, timeoutMs)

  let expected = 0
  for (const step of steps) {
    if (gone) break
    if (Buffer.isBuffer(step)) {
      child.stdin!.write(step)
      expected += step.length
      while (stdoutBytes < expected && !gone) await new Promise<void>(resolve => (wake = resolve))
    } else {
      child.stdin!.write(`${step.line}\n`)
      await sleep(300)
    }
  }
  child.stdin!.end()
  const { code, signal } = await exit
  clearTimeout(timer)
  return { stdout: Buffer.concat(stdout), stderr, code, signal, timedOut }
}

function describe(client: string, args: string[], c: Omit<Conversation, 'stdout'>, extra = ''): string {
  return `${client} ${args.join(' ')}\nexit ${c.code ?? c.signal}${c.timedOut ? ' (timed out)' : ''}\n--- stderr ---\n${c.stderr}${extra}`
}

const OPENSSL_GROUP: Record<GroupName, string> = {
  x25519: 'X25519',
  secp256r1: 'P-256',
  secp384r1: 'P-384',
  ffdhe2048: 'ffdhe2048',
  ffdhe3072: 'ffdhe3072',
  ffdhe4096: 'ffdhe4096',
}

// One message as printed by s_client -msg.
export interface TraceMessage {
  direction: 'sent' | 'received'
  content: string // Handshake, Alert, ChangeCipherSpec, ...
  name: string // ClientHello, ServerHello, KeyUpdate, or the alert text
  bytes: Buffer
}

export function parseMessageTrace(text: string): TraceMessage[] {
  const messages: TraceMessage[] = []
  let current: TraceMessage | undefined
  for (const line of text.split('\n')) {
    const header = /^(<<<|>>>) [^,]*, (\w+)(?: \[length [0-9a-f]+\])?(?:, (.*))?$/.exec(line)
    if (header) {
      current = { direction: header[1] === '>>>' ? 'sent' : 'received', content: header[2]!, name: header[3] ?? '', bytes: Buffer.alloc(0) }
      messages.push(current)
    } else if (current && /^\s+[0-9a-f]{2}( |$)/.test(line)) {
      current.bytes = Buffer.concat([current.bytes, Buffer.from(line.replace(/\s+/g, ''), 'hex')])
    }
  }
  return messages.filter(m => m.content !== 'RecordHeader')
}

export interface OpensslOptions extends ClientOptions {
  sigalgs?: string
  // Data and s_client commands (k: KeyUpdate, K: KeyUpdate with update_requested). Replaces input.
  steps?: Step[]
}

export interface OpensslResult extends ClientResult {
  serverHellos: ServerHelloInfo[]
  trace: TraceMessage[]
}

export async function opensslClient(t: Teardown, options: OpensslOptions): Promise<OpensslResult> {
  const trace = join(tmpdir(), `titus-s_client-${randomBytes(6).toString('hex')}.txt`)
  const steps = options.steps ?? [options.input ?? defaultInput()]
  const args = [
    's_client',
    '-connect', `127.0.0.1:${options.port}`,
    options.tls12 ? '-tls1_2' : '-tls1_3',
    '-servername', options.servername ?? 'localhost',
    '-CAfile', options.caFile,
    '-verify_return_error',
    '-brief',
    '-msg', '-msgfile', trace,
    ...(steps.some(s => !Buffer.isBuffer(s)) ? [] : ['-nocommands']),
    ...(options.groups ? ['-groups', options.groups.map(g => OPENSSL_GROUP[g]).join(':')] : []),
    ...(isSuite12(options.suite) ? ['-cipher', opensslSuiteName(options.suite)] : options.suite ? ['-ciphersuites', options.suite] : []),
    ...(options.sigalgs ? ['-sigalgs', options.sigalgs] : []),
    ...(options.alpn ? ['-alpn', options.alpn.join(',')] : []),
  ]
  let c: Conversation
  let messages: TraceMessage[]
  try {
    c = await converse(t, 'openssl', args, steps, options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
    messages = parseMessageTrace(readFileSync(trace, 'utf8'))
  } finally {
    rmSync(trace, { force: true })
  }
  const received = messages.filter(m => m.direction === 'received')
  const serverHellos = received.filter(m => m.name === 'ServerHello').map(m => parseServerHello(m.bytes.subarray(4)))
  const encryptedExtensions = received.find(m => m.name === 'EncryptedExtensions')
  const serverKeyExchange = received.find(m => m.content === 'Handshake' && m.bytes[0] === HANDSHAKE_TYPE.serverKeyExchange)
  const alert = received.find(m => m.content === 'Alert' && m.bytes[0] === 2)
  const final = serverHellos.at(-1)
  const expected = Buffer.concat(steps.filter(s => Buffer.isBuffer(s)))
  const tls13 = final?.version === 0x0304
  return {
    client: 'openssl',
    ok: c.code === 0 && !c.timedOut && /Verification: OK/.test(c.stderr) && c.stdout.equals(expected),
    received: c.stdout,
    version: final ? (tls13 ? 'TLSv1.3' : 'TLSv1.2') : undefined,
    suite: tls13 ? nameOfSuite(final?.cipherSuite) : nameOfSuite12(final?.cipherSuite),
    group: tls13
      ? final?.helloRetryRequest ? undefined : nameOfGroup(final?.group)
      : serverKeyExchange ? groupOfServerKeyExchange(serverKeyExchange.bytes.subarray(4)) : undefined,
    alpn: tls13
      ? encryptedExtensions ? alpnFromEncryptedExtensions(encryptedExtensions.bytes.subarray(4)) : undefined
      : serverKeyExchange ? final!.alpn : undefined,
    alert: alert?.bytes[1],
    detail: describe('openssl', args, c),
    serverHellos,
    trace: messages,
  }
}

// KeyUpdate messages seen in an s_client trace, by direction.
export function keyUpdates(trace: TraceMessage[]): { sent: number; received: number } {
  const updates = trace.filter(m => m.content === 'Handshake' && m.bytes[0] === HANDSHAKE_TYPE.keyUpdate)
  return { sent: updates.filter(m => m.direction === 'sent').length, received: updates.filter(m => m.direction === 'received').length }
}

const GNUTLS_GROUP: Record<GroupName, string> = {
  x25519: 'X25519',
  secp256r1: 'SECP256R1',
  secp384r1: 'SECP384R1',
  ffdhe2048: 'FFDHE2048',
  ffdhe3072: 'FFDHE3072',
  ffdhe4096: 'FFDHE4096',
}

const GNUTLS_CIPHER: Record<SuiteName, string> = {
  TLS_AES_128_GCM_SHA256: 'AES-128-GCM',
  TLS_AES_256_GCM_SHA384: 'AES-256-GCM',
  TLS_CHACHA20_POLY1305_SHA256: 'CHACHA20-POLY1305',
}

// A TLS 1.2 suite as gnutls priority items: key exchange and cipher.
function gnutlsPriority12(suite: Suite12Name): string[] {
  const [, kx, auth, cipher] = /^TLS_(ECDHE|DHE)_(RSA|ECDSA)_WITH_(.*)_SHA\d+$/.exec(suite)!
  const gnutlsCipher = { AES_128_GCM: 'AES-128-GCM', AES_256_GCM: 'AES-256-GCM', CHACHA20_POLY1305: 'CHACHA20-POLY1305' }[cipher!]
  return ['-KX-ALL', `+${kx}-${auth}`, '-CIPHER-ALL', `+${gnutlsCipher}`]
}

// The TLS 1.2 suite from gnutls' description, e.g. (TLS1.2)-(ECDHE-SECP256R1)-(RSA-PSS-RSAE-SHA256)-(AES-128-GCM).
function suite12OfGnutls(kx: string, signature: string, cipher: string): Suite12Name | undefined {
  const auth = signature.startsWith('RSA') ? 'RSA' : 'ECDSA'
  const name = { 'AES-128-GCM': 'AES_128_GCM_SHA256', 'AES-256-GCM': 'AES_256_GCM_SHA384', 'CHACHA20-POLY1305': 'CHACHA20_POLY1305_SHA256' }[cipher]
  return SUITE12_NAMES.find(s => s === `TLS_${kx}_${auth}_WITH_${name}`)
}

export interface GnutlsOptions extends ClientOptions {
  // Further priority string items, e.g. %NO_SESSION_HASH (no extended master secret).
  priority?: string[]
}

export async function gnutlsClient(t: Teardown, options: GnutlsOptions): Promise<ClientResult> {
  const log = join(tmpdir(), `titus-gnutls-${randomBytes(6).toString('hex')}.txt`)
  const priority = [
    options.tls12 ? 'NORMAL:-VERS-ALL:+VERS-TLS1.2' : 'NORMAL:-VERS-ALL:+VERS-TLS1.3',
    ...(options.groups ? ['-GROUP-ALL', ...options.groups.map(g => `+GROUP-${GNUTLS_GROUP[g]}`)] : []),
    ...(isSuite12(options.suite) ? gnutlsPriority12(options.suite) : options.suite ? ['-CIPHER-ALL', `+${GNUTLS_CIPHER[options.suite]}`] : []),
    ...(options.priority ?? []),
  ].join(':')
  const input = options.input ?? defaultInput()
  const args = [
    '--port', String(options.port),
    '127.0.0.1',
    '--x509cafile', options.caFile,
    '--sni-hostname', options.servername ?? 'localhost',
    '--verify-hostname', 'localhost',
    '--priority', priority,
    '--logfile', log,
    ...(options.alpn ? options.alpn.map(p => `--alpn=${p}`) : []),
  ]
  let c: Conversation
  let info: string
  try {
    c = await converse(t, 'gnutls-cli', args, [input], options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
    info = readFileSync(log, 'utf8')
  } finally {
    rmSync(log, { force: true })
  }
  const all = info + c.stderr
  // e.g. "- Description: (TLS1.3-X.509)-(ECDHE-X25519)-(ECDSA-SECP256R1-SHA256)-(AES-128-GCM)"
  const description = /- Description: \((TLS1\.[23])[^)]*\)-\((ECDHE|DHE)-([A-Z0-9]+)\)-\(([^)]*)\)-\(([A-Z0-9-]+)\)/.exec(all)
  const alpn = /- Application protocol: (\S+)/.exec(all)
  const alert = /Received alert \[(\d+)\]/.exec(all)
  const tls12 = description?.[1] === 'TLS1.2'
  return {
    client: 'gnutls',
    ok: c.code === 0 && !c.timedOut && /The certificate is trusted/.test(all) && c.stdout.equals(input),
    received: c.stdout,
    version: description ? `TLSv${description[1]!.slice(3)}` : undefined,
    suite: !description
      ? undefined
      : tls12
        ? suite12OfGnutls(description[2]!, description[4]!, description[5]!)
        : (Object.keys(GNUTLS_CIPHER) as SuiteName[]).find(s => GNUTLS_CIPHER[s] === description[5]),
    group: description ? (Object.keys(GNUTLS_GROUP) as GroupName[]).find(g => GNUTLS_GROUP[g] === description[3]) : undefined,
    alpn: description ? (alpn ? alpn[1]! : null) : undefined,
    alert: alert ? Number(alert[1]) : undefined,
    detail: describe('gnutls-cli', args, c, `\n--- log ---\n${info}`),
  }
}

// curl speaks HTTP/1.1 through titus to the echo backend's HTTP side, which answers with the request body.
export async function curlClient(t: Teardown, options: ClientOptions): Promise<ClientResult> {
  const host = options.servername ?? 'localhost'
  const input = options.input ?? defaultInput()
  const args = [
    '-sS', '-v',
    '--http1.1',
    ...(options.tls12 ? ['--tlsv1.2', '--tls-max', '1.2'] : ['--tlsv1.3', '--tls-max', '1.3']),
    '--cacert', options.caFile,
    '--resolve', `${host}:${options.port}:127.0.0.1`,
    ...(isSuite12(options.suite) ? ['--ciphers', opensslSuiteName(options.suite)] : options.suite ? ['--tls13-ciphers', options.suite] : []),
    ...(options.groups ? ['--curves', options.groups.map(g => OPENSSL_GROUP[g]).join(':')] : []),
    ...(options.alpn ? [] : ['--no-alpn']),
    '--data-binary', '@-',
    '-H', 'content-type: application/octet-stream',
    '--max-time', String(Math.ceil((options.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)),
    `https://${host}:${options.port}/echo`,
  ]
  // curl offers exactly one protocol over ALPN: the HTTP version it speaks.
  if (options.alpn && (options.alpn.length !== 1 || options.alpn[0] !== 'http/1.1')) throw new Error('curl can only offer ALPN http/1.1')
  const c = await run(t, 'curl', args, { input, timeoutMs: (options.timeoutMs ?? DEFAULT_TIMEOUT_MS) + 5000 })
  const session = /SSL connection using (TLSv1\.[23]) \/ (\S+)/.exec(c.stderr)
  const alpn = /ALPN[:,] server accepted (?:to use )?(\S+)/.exec(c.stderr)
  return {
    client: 'curl',
    ok: c.code === 0 && !c.timedOut && c.stdout.equals(input),
    received: c.stdout,
    version: session?.[1],
    suite: session?.[1] === 'TLSv1.2' ? suite12OfOpensslName(session[2]) : SUITE_NAMES.find(name => name === session?.[2]),
    alpn: session ? (alpn ? alpn[1]! : null) : undefined,
    detail: describe('curl', args, c),
  }
}

const NODE_GROUP: Record<GroupName, string> = {
  x25519: 'X25519',
  secp256r1: 'prime256v1',
  secp384r1: 'secp384r1',
  ffdhe2048: 'ffdhe2048',
  ffdhe3072: 'ffdhe3072',
  ffdhe4096: 'ffdhe4096',
}

export interface NodeClientOptions extends ClientOptions {
  sigalgs?: string
  // Receives each NSS key log line as the client derives its secrets.
  onKeylog?: (line: string) => void
}

export async function nodeClient(_t: Teardown, options: NodeClientOptions): Promise<ClientResult> {
  const input = options.input ?? defaultInput()
  const settings: ConnectionOptions = {
    host: '127.0.0.1',
    port: options.port,
    servername: options.servername ?? 'localhost',
    ca: readFileSync(options.caFile),
    minVersion: options.tls12 ? 'TLSv1.2' : 'TLSv1.3',
    maxVersion: options.tls12 ? 'TLSv1.2' : 'TLSv1.3',
    ...(options.groups ? { ecdhCurve: options.groups.map(g => NODE_GROUP[g]).join(':') } : {}),
    ...(options.suite ? { ciphers: isSuite12(options.suite) ? opensslSuiteName(options.suite) : options.suite } : {}),
    ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
    ...(options.sigalgs ? { sigalgs: options.sigalgs } : {}),
  }
  const socket = tlsConnect(settings)
  if (options.onKeylog) socket.on('keylog', (line: Buffer) => options.onKeylog!(line.toString()))
  const chunks: Buffer[] = []
  let received = 0
  let failure: Error | undefined
  let negotiated: Pick<ClientResult, 'suite' | 'version' | 'group' | 'alpn'> = {}
  await new Promise<void>(resolve => {
    const timer = setTimeout(() => {
      failure = new Error(`timed out after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`)
      socket.destroy()
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
    socket.once('secureConnect', () => {
      const key = socket.getEphemeralKeyInfo()
      const group = key && 'name' in key && key.name
        ? (Object.keys(NODE_GROUP) as GroupName[]).find(g => NODE_GROUP[g] === key.name)
        : key && 'size' in key && key.type === 'DH' ? (`ffdhe${key.size}` as GroupName) : undefined
      negotiated = {
        version: socket.getProtocol() ?? undefined,
        suite: [...SUITE_NAMES, ...SUITE12_NAMES].find(name => name === socket.getCipher().standardName),
        group,
        alpn: socket.alpnProtocol || null,
      }
      socket.write(input)
    })
    socket.on('data', (b: Buffer) => {
      chunks.push(b)
      received += b.length
      if (received >= input.length) socket.end()
    })
    socket.on('error', e => (failure ??= e))
    socket.on('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  const output = Buffer.concat(chunks)
  const alert = failure && /alert number (\d+)/.exec(failure.message)
  return {
    client: 'node',
    ok: !failure && output.equals(input),
    received: output,
    ...negotiated,
    alert: alert ? Number(alert[1]) : undefined,
    detail: `node:tls.connect ${JSON.stringify({ ...settings, ca: '<ca>' })}\n${failure ? `${(failure as NodeJS.ErrnoException).code ?? ''} ${failure.message}` : ''}`,
  }
}

// python3's ssl (OpenSSL underneath, but its own client code and defaults). It can restrict the groups only to one
// elliptic curve (set_ecdh_curve); x25519, the default first group, is what it offers first anyway.
const PYTHON_CLIENT = `
import json, socket, ssl, sys
port, ca, servername, cipher, curve, alpn, tls12 = sys.argv[1:8]
data = sys.stdin.buffer.read()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2 if tls12 == '1' else ssl.TLSVersion.TLSv1_3
if cipher: ctx.set_ciphers(cipher)
if curve: ctx.set_ecdh_curve(curve)
if alpn: ctx.set_alpn_protocols(alpn.split(','))
report = {}
try:
    with socket.create_connection(('127.0.0.1', int(port)), timeout=15) as raw:
        with ctx.wrap_socket(raw, server_hostname=servername) as s:
            name, version, _ = s.cipher()
            report.update(cipher=name, version=version, alpn=s.selected_alpn_protocol())
            s.sendall(data)
            got = b''
            while len(got) < len(data):
                chunk = s.recv(65536)
                if not chunk: break
                got += chunk
            sys.stdout.buffer.write(got)
except ssl.SSLError as e:
    report['error'] = str(e)
    report['alert'] = e.reason
sys.stderr.write(json.dumps(report) + '\\n')
`

const PYTHON_CURVE: Partial<Record<GroupName, string>> = { secp256r1: 'prime256v1', secp384r1: 'secp384r1' }
// OpenSSL's reason codes for received alerts (SSL_R_TLSV1_ALERT_* / SSL_R_SSLV3_ALERT_*), as python reports them.
const PYTHON_ALERTS: Record<string, number> = {
  SSLV3_ALERT_HANDSHAKE_FAILURE: 40,
  SSLV3_ALERT_ILLEGAL_PARAMETER: 47,
  TLSV1_ALERT_DECODE_ERROR: 50,
  TLSV1_ALERT_PROTOCOL_VERSION: 70,
  TLSV1_ALERT_NO_APPLICATION_PROTOCOL: 120,
}

export async function pythonClient(t: Teardown, options: ClientOptions): Promise<ClientResult> {
  const input = options.input ?? defaultInput()
  // One curve at most: x25519 (python's first default group) means the default list.
  const curves = (options.groups ?? []).filter(g => g !== 'x25519')
  if (curves.length > 1 || (options.groups?.some(g => g.startsWith('ffdhe')) ?? false)) throw new Error(`python cannot offer exactly ${options.groups?.join(':')}`)
  const args = [
    '-c', PYTHON_CLIENT,
    String(options.port), options.caFile, options.servername ?? 'localhost',
    isSuite12(options.suite) ? opensslSuiteName(options.suite) : '',
    curves[0] ? PYTHON_CURVE[curves[0]]! : '',
    options.alpn?.join(',') ?? '',
    options.tls12 ? '1' : '0',
  ]
  const c = await run(t, 'python3', args, { input, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS })
  let report: { cipher?: string; version?: string; alpn?: string | null; error?: string; alert?: string } = {}
  try {
    report = JSON.parse(c.stderr.trim().split('\n').at(-1) ?? '{}')
  } catch {
    // reported below through detail
  }
  return {
    client: 'python',
    ok: c.code === 0 && !c.timedOut && report.error === undefined && c.stdout.equals(input),
    received: c.stdout,
    version: report.version,
    suite: report.version === 'TLSv1.2' ? suite12OfOpensslName(report.cipher) : SUITE_NAMES.find(name => name === report.cipher),
    alpn: report.version ? (report.alpn ?? null) : undefined,
    alert: report.alert ? PYTHON_ALERTS[report.alert] : undefined,
    detail: `python3 ssl client ${args.slice(2).join(' ')}\nexit ${c.code ?? c.signal}${c.timedOut ? ' (timed out)' : ''}\n--- stderr ---\n${c.stderr}`,
  }
}

export type ClientDriver = (t: Teardown, options: ClientOptions) => Promise<ClientResult>

export const CLIENTS: Record<ClientName, ClientDriver> = {
  openssl: opensslClient,
  gnutls: gnutlsClient,
  curl: curlClient,
  node: nodeClient,
}

export const CLIENTS12: Record<Client12Name, ClientDriver> = { ...CLIENTS, python: pythonClient }

export interface TransferResult {
  sentSha256: string
  receivedBytes: number
  receivedSha256: string
}

// node:tls client that sends sendBytes of bulk data, half-closes, and hashes everything until the server's close.
// A failure (reset, write after the server closed) rejects rather than hangs.
export async function nodeTransfer(options: { port: number; caFile: string; sendBytes: number }): Promise<TransferResult> {
  // Half-open: titus may close its direction (the backend finished) while we are still sending.
  const socket = tlsConnect({ host: '127.0.0.1', port: options.port, servername: 'localhost', ca: readFileSync(options.caFile), minVersion: 'TLSv1.3' })
  socket.allowHalfOpen = true
  try {
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject))
    const received = readAll(socket)
    const sentSha256 = await writeAll(socket, bulkData(options.sendBytes))
    socket.end()
    const { bytes, sha256 } = await received
    return { sentSha256, receivedBytes: bytes, receivedSha256: sha256 }
  } finally {
    socket.destroy()
  }
}
