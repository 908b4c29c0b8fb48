// Real TLS 1.2 clients (openssl s_client, gnutls-cli, curl, node:tls, python3 ssl) through titus on node to an echo
// backend: every suite x group x certificate type, version negotiation and the downgrade sentinel, extended master
// secret (and the legacy master secret when allowed), DHE with each kind of dhgroup, renegotiation refused, ALPN.
import { getDiffieHellman } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createCertSet, type CertKind } from './support/certs.js'
import { startEchoBackend } from './support/backends.js'
import { CLIENT12_NAMES, CLIENTS12, gnutlsClient, nodeClient, opensslClient, pythonClient, type Client12Name, type OpensslResult } from './support/clients.js'
import { rawExchange } from './support/raw.js'
import { startTitus, type Titus } from './support/titus.js'
import {
  ALERT,
  CONTENT_TYPE,
  DOWNGRADE_SENTINEL_TLS12,
  EXTENSION,
  HANDSHAKE_TYPE,
  SUITE12_NAMES,
  clientHello,
  ext,
  extension,
  parseHandshakeMessages,
  parseRecords,
  parseServerHello,
  parseServerKeyExchange12,
  record,
  u8,
  vec8,
  type GroupName,
  type Suite12Name,
} from './support/wire.js'

const certs = createCertSet(t)
const echo = await startEchoBackend(t)

// honor-client-cipher-order: the client's first group is the one under test, even when it also offers the curve of
// an ECDSA certificate (RFC 8422 5.1.1: the certificate's curve must be among the client's groups).
const MATRIX_ARGS = ['--ecdhcurve', 'x25519:secp256r1:secp384r1', '--dhgroup', 'ffdhe2048:ffdhe3072', '--honor-client-cipher-order', 'yes']
const CERT_CURVE: Partial<Record<CertKind, GroupName>> = { p256: 'secp256r1', p384: 'secp384r1' }

interface Combo {
  suite: Suite12Name
  group: GroupName
  kind: CertKind
  client: Client12Name
}

// What the client offers for a combination, or undefined if it cannot offer exactly that.
function offeredGroups({ suite, group, kind, client }: Combo): GroupName[] | undefined | 'cannot' {
  if (suite.startsWith('TLS_DHE')) {
    // gnutls negotiates RFC 7919 groups in TLS 1.2; OpenSSL-based clients send none there (OpenSSL 3.0 offers ffdhe
    // groups for TLS 1.3 only), so they get titus' configured parameters: also ffdhe2048.
    return client === 'gnutls' ? ['ffdhe2048'] : undefined
  }
  const certCurve = CERT_CURVE[kind]
  const groups = certCurve && certCurve !== group ? [group, certCurve] : [group]
  if (client === 'python') {
    // One curve at most, and x25519 means its default list (x25519 first, then the NIST curves).
    if (group === 'x25519') return ['x25519']
    return groups.length === 1 ? groups : 'cannot'
  }
  return groups
}

function matrix(): Combo[] {
  const combos: Combo[] = []
  let rotation = 0
  const add = (suite: Suite12Name, group: GroupName, kind: CertKind, preferred?: Client12Name) => {
    for (let tries = 0; tries < CLIENT12_NAMES.length; tries++) {
      const client = preferred ?? CLIENT12_NAMES[(rotation + tries) % CLIENT12_NAMES.length]!
      if (offeredGroups({ suite, group, kind, client }) === 'cannot') {
        if (preferred) return false
        continue
      }
      if (!preferred) rotation = (rotation + tries + 1) % CLIENT12_NAMES.length
      combos.push({ suite, group, kind, client })
      return true
    }
    return false
  }
  const kindsFor = (suite: Suite12Name): CertKind[] => (suite.includes('_ECDSA_') ? ['p256', 'p384', 'ed25519'] : ['rsa'])
  const groupsFor = (suite: Suite12Name): GroupName[] => (suite.startsWith('TLS_DHE') ? ['ffdhe2048'] : ['x25519', 'secp256r1', 'secp384r1'])
  for (const suite of SUITE12_NAMES) for (const group of groupsFor(suite)) for (const kind of kindsFor(suite)) add(suite, group, kind)
  // Top up so that every client has seen every suite and every certificate type.
  for (const client of CLIENT12_NAMES) {
    for (const suite of SUITE12_NAMES) {
      if (!combos.some(c => c.client === client && c.suite === suite)) add(suite, groupsFor(suite)[0]!, kindsFor(suite)[0]!, client)
    }
    for (const kind of ['rsa', 'p256', 'p384', 'ed25519'] as CertKind[]) {
      if (combos.some(c => c.client === client && c.kind === kind)) continue
      const suite = SUITE12_NAMES.find(s => kindsFor(s).includes(kind))!
      add(suite, 'x25519', kind, client)
    }
  }
  return combos
}

t.test('every TLS 1.2 suite x group x certificate type, clients rotated', async t => {
  const kinds: CertKind[] = ['rsa', 'p256', 'p384', 'ed25519']
  const servers = Object.fromEntries(
    await Promise.all(kinds.map(async kind => [kind, await startTitus(t, { backendPort: echo.port, key: certs.leaves[kind].key, cert: certs.leaves[kind].chain, args: MATRIX_ARGS })])),
  ) as Record<CertKind, Titus>
  const combos = matrix()
  // A representative matrix, not the full product of clients: it must stay quick.
  t.ok(combos.length <= 64, `${combos.length} handshakes`)
  const covered = new Set<string>()
  const queue = [...combos]
  const worker = async () => {
    for (let combo = queue.shift(); combo; combo = queue.shift()) {
      const { suite, group, kind, client } = combo
      const groups = offeredGroups(combo) as GroupName[] | undefined
      const r = await CLIENTS12[client](t, { port: servers[kind].port, caFile: certs.caFile, tls12: true, suite, groups })
      const label = `${client} ${suite} ${group} ${kind}`
      t.ok(r.ok, `${label}: verified chain, byte-exact echo`, { detail: r.detail })
      t.equal(r.version, 'TLSv1.2', `${label}: version`)
      t.equal(r.suite, suite, `${label}: suite`)
      // curl and python cannot tell the group; what they offered first is what honor-client-cipher-order takes.
      if (client !== 'curl' && client !== 'python') t.equal(r.group, group, `${label}: group`)
      if (r.ok) {
        covered.add(`${client}:${suite}`)
        covered.add(`${client}:${kind}`)
      }
    }
  }
  await Promise.all([worker(), worker(), worker()])
  for (const client of CLIENT12_NAMES) for (const item of [...SUITE12_NAMES, ...kinds]) t.ok(covered.has(`${client}:${item}`), `${client} succeeded with ${item}`)
})

t.test('version negotiation and the RFC 8446 downgrade sentinel', async t => {
  const both = await startTitus(t, { backendPort: echo.port, key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain })
  const only12 = await startTitus(t, { backendPort: echo.port, key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain, args: ['--tlsv1.3', 'no'] })

  const downgraded = await opensslClient(t, { port: both.port, caFile: certs.caFile, tls12: true })
  t.ok(downgraded.ok, 'TLS 1.2 client served while TLS 1.3 is on', { detail: downgraded.detail })
  t.equal(downgraded.serverHellos[0]?.random.subarray(24).toString('hex'), DOWNGRADE_SENTINEL_TLS12.toString('hex'), 'ServerHello.random ends in DOWNGRD\\x01')

  const plain = await opensslClient(t, { port: only12.port, caFile: certs.caFile, tls12: true })
  t.ok(plain.ok, 'TLS 1.2 with tlsv1.3 no', { detail: plain.detail })
  t.not(plain.serverHellos[0]?.random.subarray(24).toString('hex'), DOWNGRADE_SENTINEL_TLS12.toString('hex'), 'no sentinel when TLS 1.3 is off')
  const hello = plain.serverHellos[0]!
  t.ok(hello.extensions.includes(EXTENSION.renegotiationInfo), 'renegotiation_info answered (RFC 5746)')
  t.ok(hello.extensions.includes(EXTENSION.extendedMasterSecret), 'extended_master_secret answered (RFC 7627)')
  t.ok(hello.extensions.includes(EXTENSION.ecPointFormats), 'ec_point_formats answered for ECDHE (RFC 8422)')
  t.notOk(hello.extensions.includes(35), 'no session_ticket: no resumption')

  const thirteen = await nodeClient(t, { port: both.port, caFile: certs.caFile })
  t.equal(thirteen.version, 'TLSv1.3', 'a TLS 1.3 client still gets TLS 1.3', { detail: thirteen.detail })
  const refused = await opensslClient(t, { port: only12.port, caFile: certs.caFile })
  t.equal(refused.alert, ALERT.protocolVersion, 'a TLS 1.3-only client gets protocol_version with tlsv1.3 no', { detail: refused.detail })
})

// A TLS 1.2 ClientHello a modern client would send, with or without the extended_master_secret extension.
function tls12Hello(withEms: boolean): Buffer {
  return clientHello({
    cipherSuites: [0xc02b, 0xc02f, 0x00ff],
    extensions: [
      ext.supportedGroups([0x001d, 0x0017]),
      extension(EXTENSION.ecPointFormats, vec8(u8(0))),
      ext.signatureAlgorithms(),
      ...(withEms ? [extension(EXTENSION.extendedMasterSecret, Buffer.alloc(0))] : []),
    ],
  })
}

const isServerHelloDone = (received: Buffer) =>
  parseRecords(received).records.some(r => r.type === CONTENT_TYPE.handshake && parseHandshakeMessages(r.body).some(m => m.type === HANDSHAKE_TYPE.serverHelloDone))

t.test('extended master secret (RFC 7627)', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.p256.key, cert: certs.leaves.p256.chain })
  const withEms = await rawExchange(titus.port, record(CONTENT_TYPE.handshake, tls12Hello(true)), { until: isServerHelloDone })
  t.equal(withEms.end, 'until', 'a client with EMS gets the server flight')

  const withoutEms = await rawExchange(titus.port, record(CONTENT_TYPE.handshake, tls12Hello(false)))
  t.equal(withoutEms.bytes.toString('hex'), `15030300020228`, 'a client without EMS gets a fatal handshake_failure alert')
  t.not(withoutEms.end, 'timeout', 'and the connection is closed')

  const real = await gnutlsClient(t, { port: titus.port, caFile: certs.caFile, tls12: true })
  t.ok(real.ok, 'gnutls (EMS by default) works', { detail: real.detail })

  const relaxed = await startTitus(t, { backendPort: echo.port, key: certs.leaves.p256.key, cert: certs.leaves.p256.chain, args: ['--extended-master-secret', 'no'] })
  const legacy = await rawExchange(relaxed.port, record(CONTENT_TYPE.handshake, tls12Hello(false)), { until: isServerHelloDone })
  t.equal(legacy.end, 'until', 'with extended-master-secret no, a client without EMS is served')
  const hello = parseRecords(legacy.bytes).records.flatMap(r => parseHandshakeMessages(r.body)).find(m => m.type === HANDSHAKE_TYPE.serverHello)
  t.notOk(hello && parseServerHello(hello.body).extensions.includes(EXTENSION.extendedMasterSecret), 'and gets no EMS extension back')

  // A real client without EMS: the default refuses it, and with extended-master-secret no both sides must agree on the
  // legacy master secret (RFC 5246 8.1) for the Finished messages and the echo to come through.
  const noEms = { caFile: certs.caFile, tls12: true, priority: ['%NO_SESSION_HASH'] }
  const refused = await gnutlsClient(t, { ...noEms, port: titus.port })
  t.equal(refused.alert, ALERT.handshakeFailure, 'gnutls with %NO_SESSION_HASH gets handshake_failure by default', { detail: refused.detail })
  const served = await gnutlsClient(t, { ...noEms, port: relaxed.port })
  t.ok(served.ok, 'and with extended-master-secret no it is served: verified chain, byte-exact echo', { detail: served.detail })
  t.equal(served.version, 'TLSv1.2', { detail: served.detail })
})

t.test('TLS 1.2 DHE with larger RFC 7919 groups, RFC 3526 group 15 and a PEM parameters file', async t => {
  const suite = 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256'
  const rsa = { backendPort: echo.port, key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain }
  // Group 15 for clients that negotiate no RFC 7919 group (OpenSSL 3.0 offers none in TLS 1.2), ffdhe for gnutls.
  const named = await startTitus(t, { ...rsa, args: ['--dhgroup', '15:ffdhe3072:ffdhe4096'] })
  const pemFile = fileURLToPath(new URL('./fixtures/config/dh-ffdhe2048.pem', import.meta.url))
  const fromFile = await startTitus(t, { ...rsa, args: ['--dhgroup', pemFile] })

  for (const group of ['ffdhe3072', 'ffdhe4096'] as const) {
    const r = await gnutlsClient(t, { port: named.port, caFile: certs.caFile, tls12: true, suite, groups: [group] })
    t.ok(r.ok, `gnutls offering only ${group}: verified chain, byte-exact echo`, { detail: r.detail })
    t.equal(r.suite, suite, { detail: r.detail })
    t.equal(r.group, group, `gnutls reports ${group}`, { detail: r.detail })
  }

  // The prime in the ServerKeyExchange, as s_client traced it.
  const primeOf = (r: OpensslResult) => {
    const message = r.trace.find(m => m.direction === 'received' && m.content === 'Handshake' && m.bytes[0] === HANDSHAKE_TYPE.serverKeyExchange)
    const params = message && parseServerKeyExchange12(message.bytes.subarray(4), 'DHE')
    return params?.kind === 'DHE' ? params.p : undefined
  }
  const group15 = await opensslClient(t, { port: named.port, caFile: certs.caFile, tls12: true, suite })
  t.ok(group15.ok, 'openssl with dhgroup 15: verified chain, byte-exact echo', { detail: group15.detail })
  t.match(group15.detail, /Server Temp Key: DH, 3072 bits/, 'openssl reports a 3072-bit DH key')
  t.ok(primeOf(group15)?.equals(getDiffieHellman('modp15').getPrime()), "the prime is RFC 3526's 3072-bit MODP group (node's modp15)")

  const pem = await opensslClient(t, { port: fromFile.port, caFile: certs.caFile, tls12: true, suite })
  t.ok(pem.ok, 'openssl with dhgroup from a PEM file: verified chain, byte-exact echo', { detail: pem.detail })
  t.match(pem.detail, /Server Temp Key: DH, 2048 bits/, 'openssl reports a 2048-bit DH key')
  const pemDer = Buffer.from(readFileSync(pemFile, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64')
  const prime = primeOf(pem)
  t.ok(prime && prime.length === 256 && pemDer.includes(prime), 'the prime is the one in the PEM file')
})

t.test('renegotiation is refused with a no_renegotiation warning, as OpenSSL 3 does', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.rsa.key, cert: certs.leaves.rsa.chain })
  const first = Buffer.from('before renegotiation\n')
  const r = await opensslClient(t, { port: titus.port, caFile: certs.caFile, tls12: true, steps: [first, { line: 'R' }, Buffer.from('after\n')] })
  t.ok(r.received.subarray(0, first.length).equals(first), 'data before the attempt was echoed', { detail: r.detail })
  const clientHellos = r.trace.filter(m => m.direction === 'sent' && m.name === 'ClientHello')
  t.equal(clientHellos.length, 2, 'the client tried to renegotiate')
  const warnings = r.trace.filter(m => m.direction === 'received' && m.content === 'Alert' && m.bytes[0] === 1)
  t.same(warnings.map(m => m.bytes[1]), [ALERT.noRenegotiation], 'titus answered with a no_renegotiation warning')
  t.equal(r.serverHellos.length, 1, 'no second ServerHello: the first session stays')
  // OpenSSL's client gives up on a refused renegotiation (fatal handshake_failure) and closes.
  t.notOk(r.ok, 's_client ends the connection itself')
  await t.resolves(titus.waitForLog(/client sent handshake_failure|handshake_failure/), 'titus saw the client give up')
})

t.test('ALPN in TLS 1.2', async t => {
  const titus = await startTitus(t, { backendPort: echo.port, key: certs.leaves.p384.key, cert: certs.leaves.p384.chain, args: ['--alpn', 'h2,http/1.1'] })
  const base = { port: titus.port, caFile: certs.caFile, tls12: true }
  const openssl = await opensslClient(t, { ...base, alpn: ['spdy/1', 'http/1.1'] })
  t.equal(openssl.alpn, 'http/1.1', 'openssl', { detail: openssl.detail })
  const gnutls = await gnutlsClient(t, { ...base, alpn: ['h2'] })
  t.equal(gnutls.alpn, 'h2', 'gnutls', { detail: gnutls.detail })
  const python = await pythonClient(t, { ...base, alpn: ['http/1.1', 'h2'] })
  t.equal(python.alpn, 'h2', 'python: server preference', { detail: python.detail })
  const none = await nodeClient(t, base)
  t.equal(none.alpn, null, 'a client without ALPN gets none', { detail: none.detail })
  const mismatch = await nodeClient(t, { ...base, alpn: ['xmpp'] })
  t.equal(mismatch.alert, ALERT.noApplicationProtocol, 'no overlap: no_application_protocol', { detail: mismatch.detail })
})
