// titus on Bun and Deno: a representative subset of the node interop suites per runtime. Every TLS 1.3 suite x
// certificate type, with the groups and the clients rotating; HelloRetryRequest, SNI, ALPN, KeyUpdate; TLS 1.2 with
// ECDHE-RSA and ECDHE-ECDSA-CHACHA20; 64 MiB each way. As root, titus serves through its launcher's sandbox.
import t from 'tap'
import { readlinkSync } from 'node:fs'
import { CERT_KINDS, createCertSet, type CertKind } from './support/certs.js'
import { startEchoBackend, startSinkSourceBackend } from './support/backends.js'
import { CLIENT_NAMES, gnutlsClient, keyUpdates, nodeClient, nodeTransfer, opensslClient } from './support/clients.js'
import { rotatingClient, runTls13Matrix, type Tls13Combo } from './support/matrix.js'
import { startTitus, type Runtime, type Titus } from './support/titus.js'
import { ALERT, SUITE_NAMES, type GroupName, type SuiteName } from './support/wire.js'
import { descendants, rolePids, skipUnlessRoot, waitUntil } from './fixtures/probe-harness.js'

// ffdhe4096 stays out: the HelloRetryRequest case offers it first, so titus must ask for another group.
const GROUPS: GroupName[] = ['x25519', 'secp256r1', 'secp384r1', 'ffdhe2048', 'ffdhe3072']
const SERVER_ARGS = ['--ecdhcurve', 'x25519:secp256r1:secp384r1', '--dhgroup', 'ffdhe2048:ffdhe3072', '--alpn', 'h2,http/1.1']
// The bulk transfer runs each runtime's weakest AEAD path: ChaCha20 in JavaScript (@noble) on Bun, AES-GCM on Deno.
const BULK_SUITE: Record<'bun' | 'deno', SuiteName> = { bun: 'TLS_CHACHA20_POLY1305_SHA256', deno: 'TLS_AES_128_GCM_SHA256' }
const BULK_BYTES = 64 * 1024 * 1024

const certs = createCertSet(t)
const echo = await startEchoBackend(t)

// Each suite with each certificate type, the groups in turn; the rotation gives every client every suite.
const combos: Tls13Combo[] = []
SUITE_NAMES.forEach((suite, s) =>
  CERT_KINDS.forEach((kind, k) => combos.push({ suite, kind, group: GROUPS[(s * CERT_KINDS.length + k) % GROUPS.length]!, client: rotatingClient(s + k) })),
)

/** The net namespace of a live process. */
const netNamespace = (pid: number) => readlinkSync(`/proc/${pid}/ns/net`)

for (const runtime of ['bun', 'deno'] as const satisfies readonly Runtime[]) {
  t.test(`titus on ${runtime}`, async t => {
    const [servers, sink] = await Promise.all([
      Promise.all(CERT_KINDS.map(kind => startTitus(t, { runtime, backendPort: echo.port, key: certs.leaves[kind].key, cert: certs.leaves[kind].chain, args: SERVER_ARGS }))),
      startSinkSourceBackend(t, BULK_BYTES),
    ])
    const server = Object.fromEntries(CERT_KINDS.map((kind, k) => [kind, servers[k]!])) as Record<CertKind, Titus>
    const bulkServer = await startTitus(t, {
      runtime,
      backendPort: sink.port,
      key: certs.leaves.p256.key,
      cert: certs.leaves.p256.chain,
      args: ['--ciphersuites', BULK_SUITE[runtime]],
    })

    t.test('every suite x certificate type, every group, rotating clients', async t => {
      const covered = await runTls13Matrix(t, combos, server, certs.caFile)
      for (const item of [...SUITE_NAMES, ...GROUPS, ...CERT_KINDS]) t.ok([...covered].some(c => c.endsWith(`:${item}`)), `a client succeeded with ${item}`)
      for (const client of CLIENT_NAMES) for (const suite of SUITE_NAMES) t.ok(covered.has(`${client}:${suite}`), `${client} succeeded with ${suite}`)
    })

    t.test('HelloRetryRequest: the key share is for a group titus does not take', async t => {
      const r = await opensslClient(t, { port: server.rsa.port, caFile: certs.caFile, groups: ['ffdhe4096', 'x25519'] })
      t.ok(r.ok, 'handshake and echo', { detail: r.detail })
      t.equal(r.serverHellos.length, 2, 'two ServerHellos: HRR, then the real one')
      t.equal(r.serverHellos[0]?.helloRetryRequest, true, 'the first is a HelloRetryRequest')
      t.equal(r.serverHellos[0]?.group, 0x001d, 'asking for x25519')
      t.equal(r.group, 'x25519')
    })

    t.test('SNI reaches the log; ALPN negotiated and refused', async t => {
      const sni = await opensslClient(t, { port: server.p384.port, caFile: certs.caFile, servername: `sni-probe-${runtime}.test` })
      t.ok(sni.ok, { detail: sni.detail })
      await t.resolves(server.p384.waitForLog(new RegExp(`sni=sni-probe-${runtime}\\.test\\b`)))
      const h2 = await gnutlsClient(t, { port: server.p256.port, caFile: certs.caFile, alpn: ['h2'] })
      t.ok(h2.ok, { detail: h2.detail })
      t.equal(h2.alpn, 'h2', 'ALPN h2 negotiated')
      const mismatch = await nodeClient(t, { port: server.ed25519.port, caFile: certs.caFile, alpn: ['spdy/3'] })
      t.equal(mismatch.alert, ALERT.noApplicationProtocol, 'no ALPN overlap: no_application_protocol', { detail: mismatch.detail })
    })

    t.test('KeyUpdate both ways; data still flows after each', async t => {
      const data = (n: number) => Buffer.from(`data ${n} ${'x'.repeat(1000 * n)}\n`)
      const r = await opensslClient(t, { port: server.ed25519.port, caFile: certs.caFile, steps: [data(1), { line: 'k' }, data(2), { line: 'K' }, data(3)] })
      t.ok(r.ok, 'all data echoed byte-exact', { detail: r.detail })
      t.same(keyUpdates(r.trace), { sent: 2, received: 1 }, 'titus answered update_requested with its own KeyUpdate')
    })

    t.test('TLS 1.2: ECDHE-RSA and ECDHE-ECDSA-CHACHA20', async t => {
      const rsa = await gnutlsClient(t, { port: server.rsa.port, caFile: certs.caFile, tls12: true, suite: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', groups: ['secp256r1'] })
      t.ok(rsa.ok, 'gnutls', { detail: rsa.detail })
      t.equal(rsa.suite, 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384')
      const chacha = await opensslClient(t, { port: server.p256.port, caFile: certs.caFile, tls12: true, suite: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', groups: ['x25519', 'secp256r1'] })
      t.ok(chacha.ok, 'openssl', { detail: chacha.detail })
      t.equal(chacha.version, 'TLSv1.2')
      t.equal(chacha.suite, 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256')
      t.equal(chacha.group, 'x25519')
    })

    t.test(`64 MiB each way, byte-exact (${BULK_SUITE[runtime]})`, async t => {
      const transfer = nodeTransfer({ port: bulkServer.port, caFile: certs.caFile, sendBytes: BULK_BYTES })
      if (!skipUnlessRoot) {
        // While the transfer runs, its connection process (and any spare) is alive, each in a network namespace of its own.
        let conns: number[] = []
        t.ok(await waitUntil(() => (conns = rolePids(descendants(bulkServer.pid), 'conn')).length > 0, 10000), 'connection processes run during the transfer')
        for (const pid of conns) t.not(netNamespace(pid), netNamespace(bulkServer.pid), `connection process ${pid}: its own network namespace`)
      }
      const got = await transfer
      const backendSaw = await sink.results[0]!
      t.equal(backendSaw.receivedBytes, BULK_BYTES, 'backend received every byte')
      t.equal(backendSaw.receivedSha256, got.sentSha256, 'client → backend byte-exact')
      t.equal(got.receivedBytes, BULK_BYTES, 'client received every byte')
      t.equal(got.receivedSha256, backendSaw.sentSha256, 'backend → client byte-exact')
    })

    t.test('sandboxed through the launcher', { skip: skipUnlessRoot }, async t => {
      for (const titus of [...servers, bulkServer]) {
        const start = titus.log.find(line => line.startsWith('titus: start '))
        t.match(start, new RegExp(`sandbox="launcher \\S*titus-launcher .*runtime ${runtime}\\)"`), `titus ${titus.pid} starts its children through the launcher`)
      }
      const [keyserver] = rolePids(descendants(bulkServer.pid), 'keyserver')
      t.ok(keyserver, 'a keyserver runs')
      if (keyserver) t.not(netNamespace(keyserver), netNamespace(bulkServer.pid), 'the keyserver has a network namespace of its own')
    })
  })
}
