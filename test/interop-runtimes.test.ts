// titus on Bun and Deno: a representative subset of the node interop suite (one handshake per certificate type,
// each with a different client, ALPN both ways, and 8 MiB each way through the echo backend).
import t from 'tap'
import { CERT_KINDS, createCertSet, type CertKind } from './support/certs.js'
import { startEchoBackend } from './support/backends.js'
import { curlClient, gnutlsClient, nodeClient, nodeTransfer, opensslClient, type ClientDriver } from './support/clients.js'
import { startTitus, type Runtime } from './support/titus.js'
import { ALERT } from './support/wire.js'

const certs = createCertSet(t)
const echo = await startEchoBackend(t)

const CLIENT_FOR: Record<CertKind, [string, ClientDriver]> = {
  rsa: ['openssl', opensslClient],
  p256: ['gnutls', gnutlsClient],
  p384: ['curl', curlClient],
  ed25519: ['node', nodeClient],
}

for (const runtime of ['bun', 'deno'] as Runtime[]) {
  t.test(`titus on ${runtime}`, async t => {
    const servers = await Promise.all(
      CERT_KINDS.map(kind =>
        startTitus(t, { runtime, backendPort: echo.port, key: certs.leaves[kind].key, cert: certs.leaves[kind].chain, args: ['--alpn', 'h2,http/1.1'] }),
      ),
    )
    const port = (kind: CertKind) => servers[CERT_KINDS.indexOf(kind)]!.port

    for (const kind of CERT_KINDS) {
      const [name, client] = CLIENT_FOR[kind]
      const r = await client(t, { port: port(kind), caFile: certs.caFile })
      t.ok(r.ok, `${kind} certificate, ${name}: verified chain, byte-exact echo`, { detail: r.detail })
    }

    const h2 = await gnutlsClient(t, { port: port('p256'), caFile: certs.caFile, alpn: ['h2'] })
    t.equal(h2.alpn, 'h2', 'ALPN h2 negotiated', { detail: h2.detail })
    const mismatch = await opensslClient(t, { port: port('rsa'), caFile: certs.caFile, alpn: ['spdy/3'] })
    t.equal(mismatch.alert, ALERT.noApplicationProtocol, 'no ALPN overlap: no_application_protocol', { detail: mismatch.detail })

    const size = 8 * 1024 * 1024
    const bulk = await nodeTransfer({ port: port('ed25519'), caFile: certs.caFile, sendBytes: size })
    t.equal(bulk.receivedBytes, size, '8 MiB echoed back')
    t.equal(bulk.receivedSha256, bulk.sentSha256, 'byte-exact')
  })
}
