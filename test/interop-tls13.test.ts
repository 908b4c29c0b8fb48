// Real TLS 1.3 clients (openssl s_client, gnutls-cli, curl, node:tls) through titus on node to an echo backend:
// every group x suite x certificate type, HelloRetryRequest, ALPN, SNI, KeyUpdate, bulk transfer, TLS 1.2-only clients.
import t from 'tap'
import { CERT_KINDS, createCertSet, type CertKind } from './support/certs.js'
import { startEchoBackend, startSinkSourceBackend } from './support/backends.js'
import { CLIENT_NAMES, curlClient, gnutlsClient, keyUpdates, nodeClient, nodeTransfer, opensslClient } from './support/clients.js'
import { rotatingClient, runTls13Matrix, type Tls13Combo } from './support/matrix.js'
import { startTitus, type Titus } from './support/titus.js'
import { ALERT, GROUP_NAMES, SUITE_NAMES } from './support/wire.js'

const ALL_GROUPS = ['--ecdhcurve', 'x25519:secp256r1:secp384r1', '--dhgroup', 'ffdhe2048:ffdhe3072:ffdhe4096']

const certs = createCertSet(t)
const echo = await startEchoBackend(t)

t.test('every group x suite x certificate type, each with a real client', async t => {
  const servers = Object.fromEntries(
    await Promise.all(CERT_KINDS.map(async kind => [kind, await startTitus(t, { backendPort: echo.port, key: certs.leaves[kind].key, cert: certs.leaves[kind].chain, args: ALL_GROUPS })])),
  ) as Record<CertKind, Titus>

  const combos: Tls13Combo[] = []
  GROUP_NAMES.forEach((group, g) =>
    SUITE_NAMES.forEach((suite, s) =>
      // Rotating over clients gives each client every suite and every certificate type in every group.
      CERT_KINDS.forEach((kind, k) => combos.push({ group, suite, kind, client: rotatingClient(g + s + k) })),
    ),
  )
  const covered = await runTls13Matrix(t, combos, servers, certs.caFile)
  for (const client of CLIENT_NAMES)
    for (const item of [...SUITE_NAMES, ...CERT_KINDS]) t.ok(covered.has(`${client}:${item}`), `${client} succeeded with ${item}`)
})

t.test('HelloRetryRequest when the client shares a key for a group titus does not take', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.p256.key, cert: certs.leaves.p256.chain, args: ['--ecdhcurve', 'x25519'] })
  const r = await opensslClient(t, { port: titus.port, caFile: certs.caFile, groups: ['secp384r1', 'x25519'] })
  t.ok(r.ok, 'handshake and echo', { detail: r.detail })
  t.equal(r.serverHellos.length, 2, 'two ServerHellos: HRR, then the real one')
  t.equal(r.serverHellos[0]?.helloRetryRequest, true, 'the first is a HelloRetryRequest')
  t.equal(r.serverHellos[0]?.group, 0x001d, 'asking for x25519')
  t.equal(r.serverHellos[1]?.helloRetryRequest, false)
  t.equal(r.group, 'x25519')
})

t.test('HelloRetryRequest through gnutls', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain, args: ['--ecdhcurve', 'secp256r1', '--dhgroup', 'ffdhe3072'] })
  // gnutls sends a key share only for its first group; titus takes only P-256 and ffdhe3072, so success needs an HRR.
  const r = await gnutlsClient(t, { port: titus.port, caFile: certs.caFile, groups: ['x25519', 'ffdhe3072'] })
  t.ok(r.ok, 'handshake and echo after HRR', { detail: r.detail })
  t.equal(r.group, 'ffdhe3072')
})

t.test('ALPN, SNI and KeyUpdate', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.p384.key, cert: certs.leaves.p384.chain, args: ['--alpn', 'h2,http/1.1'] })
  const base = { port: titus.port, caFile: certs.caFile }

  t.test('ALPN overlap is negotiated', async t => {
    const openssl = await opensslClient(t, { ...base, alpn: ['spdy/1', 'http/1.1'] })
    t.ok(openssl.ok, 'openssl', { detail: openssl.detail })
    t.equal(openssl.alpn, 'http/1.1')
    const gnutls = await gnutlsClient(t, { ...base, alpn: ['h2'] })
    t.ok(gnutls.ok, 'gnutls', { detail: gnutls.detail })
    t.equal(gnutls.alpn, 'h2')
    const curl = await curlClient(t, { ...base, alpn: ['http/1.1'] })
    t.ok(curl.ok, 'curl', { detail: curl.detail })
    t.equal(curl.alpn, 'http/1.1')
    const node = await nodeClient(t, { ...base, alpn: ['h2', 'http/1.1'] })
    t.ok(node.ok, 'node', { detail: node.detail })
    t.equal(node.alpn, 'h2')
  })

  t.test('a client without ALPN gets none', async t => {
    const r = await opensslClient(t, base)
    t.ok(r.ok, { detail: r.detail })
    t.equal(r.alpn, null)
  })

  t.test('no ALPN overlap: no_application_protocol alert', async t => {
    const openssl = await opensslClient(t, { ...base, alpn: ['spdy/3', 'h3'] })
    t.notOk(openssl.ok)
    t.equal(openssl.alert, ALERT.noApplicationProtocol, 'openssl got no_application_protocol', { detail: openssl.detail })
    const gnutls = await gnutlsClient(t, { ...base, alpn: ['imap'] })
    t.notOk(gnutls.ok)
    t.equal(gnutls.alert, ALERT.noApplicationProtocol, 'gnutls got no_application_protocol', { detail: gnutls.detail })
    const node = await nodeClient(t, { ...base, alpn: ['xmpp'] })
    t.notOk(node.ok)
    t.equal(node.alert, ALERT.noApplicationProtocol, 'node got no_application_protocol', { detail: node.detail })
  })

  t.test('titus logs the server name the client sent', async t => {
    const r = await opensslClient(t, { ...base, servername: 'sni-probe.test' })
    t.ok(r.ok, { detail: r.detail })
    await t.resolves(titus.waitForLog(/sni=sni-probe\.test\b/))
  })

  t.test('KeyUpdate both ways; data still flows after each', async t => {
    const data = (n: number) => Buffer.from(`data ${n} ${'x'.repeat(1000 * n)}\n`)
    const r = await opensslClient(t, { ...base, steps: [data(1), { line: 'k' }, data(2), { line: 'K' }, data(3), { line: 'K' }, data(4)] })
    t.ok(r.ok, 'all data echoed byte-exact', { detail: r.detail })
    const updates = keyUpdates(r.trace)
    t.equal(updates.sent, 3, 'client sent three KeyUpdates')
    t.equal(updates.received, 2, 'titus answered each update_requested with its own KeyUpdate')
  })
})

t.test('64 MiB each way, byte-exact (node:tls client)', async t => {
  const size = 64 * 1024 * 1024
  const sink = await startSinkSourceBackend(t, size)
  const titus = await startTitus(t, { backendPort: sink.port, key: certs.leaves.p256.key, cert: certs.leaves.p256.chain })
  const got = await nodeTransfer({ port: titus.port, caFile: certs.caFile, sendBytes: size })
  const backendSaw = await sink.results[0]!
  t.equal(backendSaw.receivedBytes, size, 'backend received every byte')
  t.equal(backendSaw.receivedSha256, got.sentSha256, 'client → backend byte-exact')
  t.equal(got.receivedBytes, size, 'client received every byte')
  t.equal(got.receivedSha256, backendSaw.sentSha256, 'backend → client byte-exact')
})

t.test('with tlsv1.2 no, a TLS 1.2-only client gets protocol_version', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain, args: ['--tlsv1.2', 'no'] })
  const r = await opensslClient(t, { port: titus.port, caFile: certs.caFile, tls12: true })
  t.notOk(r.ok)
  t.equal(r.alert, ALERT.protocolVersion, { detail: r.detail })
})
