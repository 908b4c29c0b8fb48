// Test PKI made with the openssl CLI: root CA → intermediate CA → one server leaf per key type.
// Each test file makes its own set in a temp dir and removes it on teardown.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const CERT_KINDS = ['rsa', 'p256', 'p384', 'ed25519'] as const
export type CertKind = (typeof CERT_KINDS)[number]

export interface LeafFiles {
  key: string
  // Leaf followed by the intermediate: what a server presents.
  chain: string
  leaf: string
}

export interface CertSet {
  dir: string
  // Root CA certificate, the only trust anchor clients get.
  caFile: string
  leaves: Record<CertKind, LeafFiles>
}

// Anything with a tap-style teardown hook.
export interface Teardown {
  teardown(fn: () => void | Promise<void>): void
}

const KEY_ALGORITHM: Record<CertKind, string[]> = {
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  ed25519: ['-algorithm', 'ED25519'],
}

function caExtensions(constraints: string): string[] {
  return [`basicConstraints=critical,${constraints}`, 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid:always']
}

const LEAF_EXTENSIONS = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:localhost,IP:127.0.0.1',
  'subjectKeyIdentifier=hash',
  'authorityKeyIdentifier=keyid:always',
]

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

function generateKey(file: string, algorithm: string[]): void {
  openssl(['genpkey', ...algorithm, '-out', file])
}

function issue(dir: string, name: string, subject: string, extensions: string[], issuer?: { cert: string; key: string }): string {
  const key = join(dir, `${name}.key`)
  const cert = join(dir, `${name}.crt`)
  const csr = join(dir, `${name}.csr`)
  const ext = join(dir, `${name}.ext`)
  writeFileSync(ext, extensions.join('\n') + '\n')
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr])
  const signer = issuer ? ['-CA', issuer.cert, '-CAkey', issuer.key] : ['-signkey', key]
  openssl(['x509', '-req', '-in', csr, ...signer, '-days', '2', '-sha256', '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-extfile', ext, '-out', cert])
  rmSync(csr)
  rmSync(ext)
  return cert
}

export function createCertSet(t: Teardown): CertSet {
  const dir = mkdtempSync(join(tmpdir(), 'titus-certs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  generateKey(join(dir, 'root.key'), KEY_ALGORITHM.p256)
  const caFile = issue(dir, 'root', '/CN=titus test root CA', caExtensions('CA:TRUE'))
  generateKey(join(dir, 'intermediate.key'), KEY_ALGORITHM.p256)
  const intermediate = issue(dir, 'intermediate', '/CN=titus test intermediate CA', caExtensions('CA:TRUE,pathlen:0'), { cert: caFile, key: join(dir, 'root.key') })
  const intermediateIssuer = { cert: intermediate, key: join(dir, 'intermediate.key') }

  const leaves = {} as Record<CertKind, LeafFiles>
  for (const kind of CERT_KINDS) {
    const key = join(dir, `${kind}.key`)
    generateKey(key, KEY_ALGORITHM[kind])
    const leaf = issue(dir, kind, `/CN=localhost ${kind}`, LEAF_EXTENSIONS, intermediateIssuer)
    const chain = join(dir, `${kind}-chain.crt`)
    writeFileSync(chain, readFileSync(leaf, 'utf8') + readFileSync(intermediate, 'utf8'))
    leaves[kind] = { key, chain, leaf }
  }
  return { dir, caFile, leaves }
}
