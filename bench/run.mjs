#!/usr/bin/env node
// titus against stunnel, hitch and haproxy, in one run, reported as ratios to titus on Node.
// Usage and the meaning of every number: docs/benchmarks.md.
//
//   node bench/run.mjs [--quick] [--only titus-node,haproxy] [--rounds N] [--out results.json]
//                      [--tools DIR] [--idle-conns N] [--crosscheck name,name] [--no-pin]
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { killAllNow, runJsonTool, startProgram, stopProgram, treeCpuSeconds, treePssKiB, waitQuiet } from './lib/proc.mjs'
import { allProxies, REFERENCE } from './lib/proxies.mjs'
import { ratios, summarize, table } from './lib/stats.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    out: { type: 'string' },
    tools: { type: 'string', default: join(root, '..', 'shared', 'bench') },
    'idle-conns': { type: 'string' },
    crosscheck: { type: 'string', default: `${REFERENCE},haproxy` },
    'no-pin': { type: 'boolean', default: false },
  },
})

const settings = opt.quick
  ? { rounds: 1, hsWarmup: 0.5, hsDuration: 2, hsConc: 32, bulkBytes: 64 * 2 ** 20, latIters: 500, idleConns: 50 }
  : { rounds: 3, hsWarmup: 1, hsDuration: 5, hsConc: 32, bulkBytes: 256 * 2 ** 20, latIters: 2000, idleConns: 200 }
if (opt.rounds) settings.rounds = Number(opt.rounds)
if (opt['idle-conns']) settings.idleConns = Number(opt['idle-conns'])
// Two or more cores: the proxy (its whole process tree) gets core 1, the load generator and the backend
// core 0, so every proxy has exactly one core and never competes with the client for it.
const pinned = !opt['no-pin'] && cpus().length >= 2
const PROXY_CPUS = pinned ? '1' : undefined
const LOAD_CPUS = pinned ? '0' : undefined
settings.pinning = pinned ? 'proxy tree on CPU 1, load generator and backend on CPU 0' : 'none'

// Every metric; `better` says which direction is good, for reading the ratios.
const METRICS = [
  { key: 'hs_rsa13', label: 'full handshakes/s, RSA-2048, TLS 1.3', better: 'higher' },
  { key: 'hs_rsa13_cpu_ms', label: 'proxy CPU ms per handshake, RSA, 1.3', better: 'lower' },
  { key: 'hs_rsa12', label: 'full handshakes/s, RSA-2048, TLS 1.2', better: 'higher' },
  { key: 'hs_ec13', label: 'full handshakes/s, ECDSA P-256, TLS 1.3', better: 'higher' },
  { key: 'hs_ec13_cpu_ms', label: 'proxy CPU ms per handshake, ECDSA, 1.3', better: 'lower' },
  { key: 'hs_rsa13_node_client', label: 'handshakes/s RSA 1.3, node:tls client', better: 'higher' },
  { key: 'bulk_MBps', label: 'bulk MB/s backend→client, AES-128-GCM', better: 'higher' },
  { key: 'bulk_cpu_s_per_GiB', label: 'proxy CPU s per GiB of bulk', better: 'lower' },
  { key: 'lat_p50_us', label: 'round trip p50 µs, 100 B echo', better: 'lower' },
  { key: 'lat_p99_us', label: 'round trip p99 µs, 100 B echo', better: 'lower' },
  { key: 'idle_pss_KiB', label: 'PSS KiB per idle connection', better: 'lower' },
]

const work = mkdtempSync(join(tmpdir(), 'titus-bench-'))
let cleanedUp = false
function cleanUpNow() {
  if (cleanedUp) return
  cleanedUp = true
  killAllNow()
  rmSync(work, { recursive: true, force: true })
}
process.on('exit', cleanUpNow)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping everything\n`)
    cleanUpNow()
    process.exit(130)
  })
}

const log = (msg) => process.stderr.write(`${msg}\n`)

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

function logTail(file, lines = 8) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

async function waitListening(child, port, logFile, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited at start-up:\n${logTail(logFile)}`)
    if (await canConnect(port)) return
    await sleep(50)
  }
  throw new Error(`not listening after ${timeoutMs / 1000} s:\n${logTail(logFile)}`)
}

// ---- set-up: the shared C tools, certificates, backend ----
const toolEnv = { ...process.env, OUT: work }
execFileSync('sh', [join(opt.tools, 'build.sh')], { env: toolEnv, stdio: ['ignore', 'ignore', 'inherit'] })
execFileSync('sh', [join(opt.tools, 'certs.sh')], { env: toolEnv, stdio: ['ignore', 'ignore', 'inherit'] })
const tlsload = join(work, 'bin', 'tlsload')
const certDir = join(work, 'certs')
const CERTS = {
  rsa: { key: join(certDir, 'rsa.key'), crt: join(certDir, 'rsa.crt'), pem: join(certDir, 'rsa.pem') },
  ec: { key: join(certDir, 'ec.key'), crt: join(certDir, 'ec.crt'), pem: join(certDir, 'ec.pem') },
}

const backendPort = await freePort()
const backendLog = join(work, 'backend.log')
const backendLogFd = openSync(backendLog, 'a')
const backend = startProgram(join(work, 'bin', 'backend'), ['127.0.0.1', String(backendPort), '14400'], { cpus: LOAD_CPUS, logFd: backendLogFd })
await waitListening(backend, backendPort, backendLog)

// ---- the measurements ----
const tool = (args, timeoutMs, onLine) => runJsonTool(tlsload, ['--host', '127.0.0.1', ...args], { cpus: LOAD_CPUS, timeoutMs, onLine })

// Proxy CPU per handshake is taken over the measured window only (tlsload's warm-up excluded), so that
// connections in flight at either end, and spare processes started afterwards, balance out.
// A proxy that starts a process per connection needs longer to reach its steady state (proxy.hsWarmup):
// the first `conc` connections all start together and share the one core.
async function handshakeRate(proxy, port, pid, tlsArgs, client = 'tlsload') {
  const warmup = Math.max(settings.hsWarmup, proxy.hsWarmup ?? 0)
  const args = ['--port', String(port), '--conc', String(settings.hsConc), '--warmup', String(warmup), '--duration', String(settings.hsDuration), ...tlsArgs]
  const timeoutMs = (warmup + settings.hsDuration + 30) * 1000
  const windowCpu = []
  const timers = [warmup, warmup + settings.hsDuration].map((s) => setTimeout(() => windowCpu.push(treeCpuSeconds(pid)), s * 1000))
  let r
  try {
    ;[r] =
      client === 'tlsload'
        ? await tool(['--mode', 'hs', ...args, '--timeout', String(timeoutMs / 1000)], timeoutMs)
        : await runJsonTool(process.execPath, [join(root, 'bench', 'load.mjs'), ...args], { cpus: LOAD_CPUS, timeoutMs })
  } finally {
    timers.forEach(clearTimeout)
  }
  if (!r) throw new Error('no output')
  // None completed and none failed: every handshake took longer than the window. That is a rate of 0.
  if (r.completed === 0 && r.errors > 0) throw new Error(`no handshake completed: ${r.first_error}`)
  const cpuMsPerConn = windowCpu.length === 2 && r.completed > 0 ? ((windowCpu[1] - windowCpu[0]) * 1000) / r.completed : undefined
  return { rate: r.conn_per_s, cpuMsPerConn, raw: { ...r, proxy_cpu_s_in_window: windowCpu.length === 2 ? windowCpu[1] - windowCpu[0] : undefined } }
}

async function bulk(port, pid) {
  const cpu0 = treeCpuSeconds(pid)
  const [r] = await tool(['--port', String(port), '--mode', 'bulk', '--bytes', String(settings.bulkBytes), '--timeout', '300'], 300_000)
  await waitQuiet(pid) // the whole cost of the connection, including a spare process replacing it
  const cpu = treeCpuSeconds(pid) - cpu0
  if (!r.complete) throw new Error(`bulk transfer incomplete: ${r.bytes} of ${settings.bulkBytes} bytes`)
  return { MBps: r.MBps, cpuSecondsPerGiB: cpu / (r.bytes / 2 ** 30), raw: r }
}

async function latency(port, iters = settings.latIters, warmup = 200) {
  const [r] = await tool(['--port', String(port), '--mode', 'lat', '--iters', String(iters), '--lat-warmup', String(warmup), '--timeout', '120'], 120_000)
  return r
}

// PSS of the proxy's whole tree with N idle (established, end-to-end) connections minus without, over N.
async function idleMemory(port, pid, conns) {
  const before = treePssKiB(pid)
  let after
  const [r] = await tool(['--port', String(port), '--mode', 'idle', '--conns', String(conns), '--hold', '600', '--timeout', '660'], 660_000, async (line, child) => {
    if (line.ready === undefined) return
    await waitQuiet(pid) // let a proxy that keeps spare processes top its pool up again
    after = treePssKiB(pid)
    child.stdin.end() // tlsload closes its connections and exits
  })
  if (after === undefined) throw new Error(`idle connections never became ready: ${JSON.stringify(r)}`)
  return { kibPerConn: (after - before) / conns, beforeKiB: before, afterKiB: after, raw: r }
}

const crosscheck = new Set(opt.crosscheck.split(',').filter(Boolean))
const TLS13 = ['--tls', '1.3']
const TLS12 = ['--tls', '1.2']

// Each step adds metrics; a failing step is recorded and the next one still runs.
function stepsFor(proxy, certKind) {
  if (certKind === 'ec') {
    return [
      ['hs_ec13', async (port, pid) => {
        const h = await handshakeRate(proxy, port, pid, TLS13)
        return { metrics: { hs_ec13: h.rate, hs_ec13_cpu_ms: h.cpuMsPerConn }, raw: h.raw }
      }],
    ]
  }
  const steps = [
    ['idle', async (port, pid) => {
      // A process per connection costs megabytes and a start-up each: fewer connections measure it as well.
      const conns = opt['idle-conns'] ? settings.idleConns : Math.min(settings.idleConns, proxy.idleConns ?? Infinity)
      const m = await idleMemory(port, pid, conns)
      return { metrics: { idle_pss_KiB: m.kibPerConn }, raw: { beforeKiB: m.beforeKiB, afterKiB: m.afterKiB, ...m.raw } }
    }],
    ['hs_rsa13', async (port, pid) => {
      const h = await handshakeRate(proxy, port, pid, TLS13)
      return { metrics: { hs_rsa13: h.rate, hs_rsa13_cpu_ms: h.cpuMsPerConn }, raw: h.raw }
    }],
    ['hs_rsa12', async (port, pid) => {
      const h = await handshakeRate(proxy, port, pid, TLS12)
      return { metrics: { hs_rsa12: h.rate }, raw: h.raw }
    }],
    ['bulk', async (port, pid) => {
      const b = await bulk(port, pid)
      return { metrics: { bulk_MBps: b.MBps, bulk_cpu_s_per_GiB: b.cpuSecondsPerGiB }, raw: b.raw }
    }],
    ['lat', async (port) => {
      const r = await latency(port)
      return { metrics: { lat_p50_us: r.median_us, lat_p99_us: r.p99_us }, raw: r }
    }],
  ]
  if (crosscheck.has(proxy.name)) {
    steps.push(['hs_rsa13_node_client', async (port, pid) => {
      const h = await handshakeRate(proxy, port, pid, TLS13, 'node')
      return { metrics: { hs_rsa13_node_client: h.rate }, raw: h.raw }
    }])
  }
  return steps
}

async function measureInstance(proxy, certKind, round, result) {
  const port = await freePort()
  const dir = mkdtempSync(join(work, `${proxy.name}-${certKind}-r${round}-`))
  const logFile = join(dir, 'proxy.log')
  const logFd = openSync(logFile, 'a')
  const [cmd, args] = proxy.command({ port, backendPort, cert: CERTS[certKind], dir })
  const child = startProgram(cmd, args, { cpus: PROXY_CPUS, logFd, cwd: dir })
  closeSync(logFd)
  try {
    await waitListening(child, port, logFile)
    await waitQuiet(child.pid) // spare processes, worker forks
    // One end-to-end connection first: catches a proxy that listens but cannot serve, and pays for
    // one-time lazy initialisation outside the measurements.
    await latency(port, 5, 0).catch((err) => {
      throw new Error(`cannot serve a connection: ${err.message}\n${logTail(logFile)}`)
    })
    for (const [name, step] of stepsFor(proxy, certKind)) {
      if (!(await waitQuiet(child.pid))) log(`  ${proxy.name}: still busy before ${name}, measuring anyway`)
      try {
        const { metrics, raw } = await step(port, child.pid)
        Object.assign(result.metrics, metrics)
        result.raw[name] = raw
        log(`  ${proxy.name} ${name}: ${Object.entries(metrics).map(([k, v]) => `${k}=${v === undefined ? '-' : +v.toFixed(2)}`).join(' ')}`)
      } catch (err) {
        result.errors[name] = err.message
        log(`  ${proxy.name} ${name}: FAILED ${err.message}`)
      }
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`proxy died during ${name}:\n${logTail(logFile)}`)
    }
  } catch (err) {
    result.errors[certKind] = err.message
    log(`  ${proxy.name} (${certKind}): FAILED ${err.message}`)
  } finally {
    await stopProgram(child)
  }
}

const proxies = allProxies(root).filter((p) => (opt.only ? opt.only.split(',').includes(p.name) : !p.optional))
if (proxies.length === 0) throw new Error(`--only ${opt.only}: no such proxy (known: ${allProxies(root).map((p) => p.name).join(', ')})`)
const skipped = {}
const active = proxies.filter((p) => {
  const why = p.missing()
  if (why) skipped[p.name] = why
  return !why
})
for (const [name, why] of Object.entries(skipped)) log(`skipping ${name}: ${why}`)

const started = new Date()
const loadBefore = loadavg()
const rounds = []
for (let round = 1; round <= settings.rounds; round++) {
  const results = {}
  rounds.push(results)
  for (const proxy of active) {
    log(`round ${round}/${settings.rounds}: ${proxy.name}`)
    results[proxy.name] = { metrics: {}, errors: {}, raw: {} }
    for (const certKind of ['rsa', 'ec']) await measureInstance(proxy, certKind, round, results[proxy.name])
  }
}
await stopProgram(backend)

// ---- report ----
const names = active.map((p) => p.name)
const summary = summarize(rounds, names, METRICS)
const ratioTable = ratios(summary, REFERENCE, METRICS)
const version = (f) => {
  try {
    return f()
  } catch {
    return 'unknown'
  }
}
const report = {
  date: started.toISOString(),
  durationSeconds: Math.round((Date.now() - started.getTime()) / 1000),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release(), memoryMiB: Math.round(totalmem() / 2 ** 20), loadavgBefore: loadBefore, loadavgAfter: loadavg() },
  settings,
  reference: REFERENCE,
  metrics: METRICS,
  proxies: Object.fromEntries(active.map((p) => [p.name, { workers: p.workers, version: version(p.version) }])),
  skipped,
  openssl: version(() => execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim()),
  medians: Object.fromEntries(names.map((n) => [n, Object.fromEntries(METRICS.map(({ key }) => [key, summary[n][key].median]))])),
  ratios: ratioTable,
  rounds,
}
const outFile = opt.out ?? join(tmpdir(), `titus-bench-${started.toISOString().replace(/[:.]/g, '-')}.json`)
writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n')

const errorCount = rounds.reduce((n, r) => n + Object.values(r).reduce((m, p) => m + Object.keys(p.errors).length, 0), 0)
process.stdout.write(
  `\ntitus benchmark, ${report.date}, ${report.machine.cpus} × ${report.machine.model}, ${settings.rounds} round(s), medians; ` +
    `(N.NNx) = value / ${REFERENCE}'s value\n${table(summary, ratioTable, REFERENCE, METRICS)}\n\n` +
    (errorCount ? `${errorCount} step(s) failed; see "errors" in the JSON\n` : '') +
    `JSON: ${outFile}\n`,
)
