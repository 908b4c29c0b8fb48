#!/usr/bin/env node
// Full-handshake load generator on node:tls, to cross-check tlsload (C/OpenSSL) with an independent
// client: each request is a new connection (no session resumption), a full handshake, a 100-byte request
// starting with 'E' (echo mode of bench's backend), the 99 echoed bytes back, then close.
//
//   node bench/load.mjs --port P [--host 127.0.0.1] [--conc 32] [--warmup 1] [--duration 5] [--tls 1.3|1.2]
//
// Prints one JSON line with the same field names tlsload --mode hs uses.
import { connect } from 'node:tls'
import { parseArgs } from 'node:util'

const REQUEST_SIZE = 100

const { values: opt } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    conc: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '1' },
    duration: { type: 'string', default: '5' },
    tls: { type: 'string', default: '1.3' },
  },
})
if (!opt.port) {
  process.stderr.write('load.mjs: --port required\n')
  process.exit(2)
}
const port = Number(opt.port)
const conc = Number(opt.conc)
const warmupMs = Number(opt.warmup) * 1000
const durationMs = Number(opt.duration) * 1000
const version = opt.tls === '1.2' ? 'TLSv1.2' : 'TLSv1.3'
// The same offer tlsload makes: one AES-128-GCM suite, X25519 then P-256.
const ciphers = version === 'TLSv1.3' ? 'TLS_AES_128_GCM_SHA256' : 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256'
const request = Buffer.alloc(REQUEST_SIZE, 'q')
request[0] = 'E'.charCodeAt(0)

const start = performance.now()
const measureFrom = start + warmupMs
const measureUntil = measureFrom + durationMs
const cpuAtStart = process.cpuUsage()
let completed = 0
let completedTotal = 0
let errors = 0
let firstError = ''
let session = {}
const latencies = []

function oneConnection() {
  return new Promise((resolve) => {
    const t0 = performance.now()
    let echoed = 0
    let done = false
    const socket = connect({
      host: opt.host,
      port,
      rejectUnauthorized: false, // self-signed; the handshake signature is still verified
      minVersion: version,
      maxVersion: version,
      ciphers,
      ecdhCurve: 'X25519:P-256',
      noDelay: true,
    })
    const finish = (err) => {
      if (done) return
      done = true
      const t1 = performance.now()
      if (err) {
        if (t1 >= measureFrom) errors++
        firstError ||= `${err.code ?? ''} ${err.message}`.trim()
        socket.destroy()
      } else {
        completedTotal++
        if (t1 >= measureFrom && t1 < measureUntil) {
          completed++
          latencies.push(t1 - t0)
        }
        if (!session.version) session = { version: socket.getProtocol(), cipher: socket.getCipher()?.standardName, group: socket.getEphemeralKeyInfo()?.name }
        socket.end() // close_notify and FIN; the kernel finishes the close while we go on
        socket.destroySoon()
      }
      resolve()
    }
    socket.once('secureConnect', () => socket.write(request))
    socket.on('data', (chunk) => {
      echoed += chunk.length
      if (echoed >= REQUEST_SIZE - 1) finish()
    })
    socket.once('error', finish)
    socket.once('close', () => finish(done ? undefined : new Error('closed before the echo arrived')))
  })
}

async function worker() {
  while (performance.now() < measureUntil) {
    await oneConnection()
    // back off a little when the target is failing, as tlsload does, instead of spinning
    if (errors > 0 && errors % 64 === 0) await new Promise((r) => setTimeout(r, 10))
  }
}

await Promise.all(Array.from({ length: conc }, worker))
latencies.sort((a, b) => a - b)
const pct = (p) => (latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.round(p * (latencies.length - 1)))])
const cpu = process.cpuUsage(cpuAtStart)
process.stdout.write(
  JSON.stringify({
    mode: 'hs',
    client: 'node:tls',
    host: opt.host,
    port,
    conc,
    duration: durationMs / 1000,
    completed,
    errors,
    conn_per_s: completed / (durationMs / 1000),
    conn_ms_p50: pct(0.5),
    conn_ms_p99: pct(0.99),
    completed_total: completedTotal,
    elapsed_total: (performance.now() - start) / 1000,
    client_cpu_s: (cpu.user + cpu.system) / 1e6,
    first_error: firstError,
    ...session,
  }) + '\n',
)
// Sockets still closing must not keep the measurement waiting.
process.exit(0)
