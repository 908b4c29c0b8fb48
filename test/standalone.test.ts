// The standalone executable (dist/titus) serves real clients on its own: TLS 1.3 and 1.2, with its connection
// processes and keyserver started from the same executable (sandboxed through titus-launcher when we are root).
import t from 'tap'
import { readFileSync, readlinkSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createCertSet } from './support/certs.js'
import { startEchoBackend } from './support/backends.js'
import { opensslClient } from './support/clients.js'
import { launchable } from './support/programs.js'
import { startTitus } from './support/titus.js'

const certs = createCertSet(t)
const echo = await startEchoBackend(t)
// Where the launcher accepts it (a copy when the checkout is somewhere writable, such as /tmp).
const executable = launchable(fileURLToPath(new URL('../dist/titus', import.meta.url)), [fileURLToPath(new URL('../dist/titus-launcher', import.meta.url))])

// Processes below `root` whose command line names an internal role, with their executable.
function roleProcesses(root: number): { pid: number; exe: string; role: string }[] {
  const found: { pid: number; exe: string; role: string }[] = []
  const children = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number)
    } catch {
      return []
    }
  }
  for (let queue = children(root); queue.length > 0; ) {
    const pid = queue.shift()!
    queue.push(...children(pid))
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')
      const at = argv.indexOf('--internal-role')
      if (at >= 0 && !argv[0]!.endsWith('titus-launcher')) found.push({ pid, exe: readlinkSync(`/proc/${pid}/exe`), role: argv[at + 1]! })
    } catch {
      // gone while we looked
    }
  }
  return found
}

t.test('dist/titus serves TLS 1.3 and TLS 1.2 with its own connection processes and keyserver', async t => {
  const titus = await startTitus(t, { runtime: 'standalone', backendPort: echo.port, key: certs.leaves.p256.key, cert: certs.leaves.p256.chain })
  const tls13 = await opensslClient(t, { port: titus.port, caFile: certs.caFile })
  t.ok(tls13.ok, 'TLS 1.3: verified chain, byte-exact echo', { detail: tls13.detail })
  t.equal(tls13.version, 'TLSv1.3')
  const tls12 = await opensslClient(t, { port: titus.port, caFile: certs.caFile, tls12: true })
  t.ok(tls12.ok, 'TLS 1.2: verified chain, byte-exact echo', { detail: tls12.detail })
  t.equal(tls12.version, 'TLSv1.2')
  const roles = roleProcesses(titus.pid)
  t.ok(roles.some(p => p.role === 'keyserver'), 'a keyserver runs')
  t.ok(roles.some(p => p.role === 'conn'), 'spare connection processes run')
  for (const p of roles) t.equal(p.exe, executable, `${p.role} process ${p.pid} is the standalone executable`)
})
