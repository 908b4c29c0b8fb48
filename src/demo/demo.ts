// `titus demo` (what `npm start` runs): a self-signed certificate in a temporary directory, a small HTTP
// backend on a free loopback port, and titus on 127.0.0.1:8443 in front of it.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CommandLineEntry } from '../cli.js'
import { runTitus } from '../supervisor/run.js'
import { VERSION } from '../version.js'
import { selfSignedCertificate } from './self-signed.js'

function demoUser(preferred: string): string {
  try {
    execFileSync('id', [preferred], { stdio: 'ignore' })
    return preferred
  } catch {
    return 'nobody'
  }
}

export async function runDemo(extra: readonly CommandLineEntry[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'titus-demo-'))
  const cleanup = () => rmSync(dir, { recursive: true, force: true })
  process.on('exit', cleanup)
  const { certPem, keyPem } = selfSignedCertificate('titus demo')
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  writeFileSync(certFile, certPem)
  writeFileSync(keyFile, keyPem, { mode: 0o600 })

  const backend = createServer((req, res) => {
    res.setHeader('content-type', 'text/plain')
    res.end(`Hello from the titus ${VERSION} demo backend.\nYou asked for ${req.method} ${req.url}; TLS was terminated by titus.\n`)
  })
  await new Promise<void>(r => backend.listen(0, '127.0.0.1', r))
  backend.unref()
  const backendPort = (backend.address() as AddressInfo).port

  const given = new Set(extra.map(e => e.name))
  const entries: CommandLineEntry[] = [
    ...(given.has('listen') || given.has('port') ? [] : [{ name: 'listen', value: '127.0.0.1:8443', position: 0 }]),
    { name: 'backend', value: '127.0.0.1', position: 0 },
    { name: 'backend-port', value: String(backendPort), position: 0 },
    { name: 'cert', value: certFile, position: 0 },
    { name: 'key', value: keyFile, position: 0 },
    // As root the sandbox needs unprivileged users; the demo borrows existing ones if none are given.
    ...(process.getuid?.() === 0 && !given.has('network-user') ? [{ name: 'network-user', value: demoUser('titus-net'), position: 0 }] : []),
    ...(process.getuid?.() === 0 && !given.has('keyserver-user') ? [{ name: 'keyserver-user', value: demoUser('titus-keys'), position: 0 }] : []),
    ...extra,
  ]
  const port = extra.find(e => e.name === 'listen')?.value.replace(/^.*:/, '') ?? extra.find(e => e.name === 'port')?.value ?? '8443'
  process.stderr.write(
    `titus demo: certificate ${certFile}\n` +
      `titus demo: try   curl --cacert ${certFile} https://localhost:${port}/\n` +
      `titus demo: Ctrl-C stops the demo\n`,
  )
  const status = await runTitus(entries, { checkOnly: false })
  backend.close()
  cleanup()
  return status
}
