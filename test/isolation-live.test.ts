// A live titus, inspected from outside as root: every connection is served by its own confined process, the keyserver is
// confined the same way as its own user (titus-net and titus-keys from the probe harness), and
// the private key is in the keyserver's memory and in no connection process's memory.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, readFileSync, readSync, readdirSync, readlinkSync } from 'node:fs'
import { createPrivateKey } from 'node:crypto'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { createCertSet } from './support/certs.js'
import { startEchoBackend } from './support/backends.js'
import { startTitus } from './support/titus.js'
import { descendants, procStatus, rolePids, sandboxUsers, skipUnlessRoot, waitUntil } from './fixtures/probe-harness.js'

// The socket inode of titus's end of a TCP connection, from the host's connection table.
function socketInode(localPort: number, remotePort: number): string | undefined {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0')
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f[1]?.endsWith(`:${hex(localPort)}`) && f[2]?.endsWith(`:${hex(remotePort)}`)) return f[9]
  }
  return undefined
}

function holdersOf(inode: string, pids: number[]): number[] {
  return pids.filter(pid => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some(fd => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`
        } catch {
          return false
        }
      })
    } catch {
      return false
    }
  })
}

// Which of `needles` occur anywhere in the process's readable memory.
function foundInMemory(pid: number, needles: Buffer[]): boolean[] {
  const found = needles.map(() => false)
  const longest = Math.max(...needles.map(n => n.length))
  const mem = openSync(`/proc/${pid}/mem`, 'r')
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, 'latin1').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (r)/.exec(line)
      if (!m || line.includes('[vvar]') || line.includes('[vsyscall]')) continue
      const start = parseInt(m[1]!, 16)
      const end = parseInt(m[2]!, 16)
      const chunk = Buffer.alloc(4 << 20)
      let carry = Buffer.alloc(0)
      for (let at = start; at < end; at += chunk.length) {
        let n: number
        try {
          n = readSync(mem, chunk, 0, Math.min(chunk.length, end - at), at)
        } catch {
          break // a region that cannot be read (guard pages and the like)
        }
        const view = Buffer.concat([carry, chunk.subarray(0, n)])
        needles.forEach((needle, i) => (found[i] ||= view.includes(needle)))
        carry = Buffer.from(view.subarray(Math.max(0, view.length - longest)))
      }
    }
  } finally {
    closeSync(mem)
  }
  return found
}

// The network interfaces a process sees: names from its /proc/PID/net/dev, flags from `ip link` inside its net namespace.
function interfaces(pid: number): { names: string[]; lines: string[] } {
  const names = readFileSync(`/proc/${pid}/net/dev`, 'latin1').split('\n').slice(2).filter(Boolean).map(line => line.split(':')[0]!.trim())
  const lines = execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-o', 'link', 'show'], { encoding: 'utf8' }).trim().split('\n')
  return { names, lines }
}

// What every sandboxed titus process must look like from outside, compared with the supervisor.
function checkConfined(t: Test, pid: number, name: string, supervisor: number, user: { user: string; uid: number; gid: number }) {
  for (const ns of ['net', 'pid', 'mnt', 'ipc', 'uts']) {
    t.not(readlinkSync(`/proc/${pid}/ns/${ns}`), readlinkSync(`/proc/${supervisor}/ns/${ns}`), `${name}: its own ${ns} namespace`)
  }
  const { names, lines } = interfaces(pid)
  t.same(names, ['lo'], `${name}: its network namespace holds only lo`)
  t.equal(lines.length, 1, `${name}: ip link sees one interface`)
  t.notMatch(lines[0], /<[^>]*\bUP\b/, `${name}: lo is down`)
  const status = procStatus(pid)
  t.equal(status.Uid, `${user.uid}\t${user.uid}\t${user.uid}\t${user.uid}`, `${name}: runs as ${user.user}`)
  t.equal(status.Gid, `${user.gid}\t${user.gid}\t${user.gid}\t${user.gid}`, `${name}: all gids are ${user.user}'s group`)
  t.equal(status.Groups, '', `${name}: no supplementary groups`)
  t.equal(status.Seccomp, '2', `${name}: seccomp filter`)
  t.equal(status.NoNewPrivs, '1', `${name}: no new privileges`)
  for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) {
    t.equal(status[set], '0000000000000000', `${name}: ${set} empty`)
  }
}

function openConnection(port: number, caFile: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(caFile), minVersion: 'TLSv1.3' })
    socket.once('secureConnect', () => {
      // One round trip through the backend, so that the connection process is fully engaged.
      socket.write('ping\n')
      socket.once('data', () => resolve(socket))
    })
    socket.once('error', reject)
    setTimeout(() => reject(new Error('connection timed out')), 10_000).unref()
  })
}

t.test('live titus, strict isolation', { skip: skipUnlessRoot }, async t => {
  const certs = createCertSet(t)
  const echo = await startEchoBackend(t)
  const users = sandboxUsers()
  const leaf = certs.leaves.p256
  const titus = await startTitus(t, {
    backendPort: echo.port,
    key: leaf.key,
    cert: leaf.chain,
    args: ['--network-user', users.conn.user, '--keyserver-user', users.keyserver.user],
  })

  const clients = [await openConnection(titus.port, certs.caFile), await openConnection(titus.port, certs.caFile)]
  t.teardown(() => clients.forEach(c => c.destroy()))
  const all = descendants(titus.pid)
  const conns = rolePids(all, 'conn')
  const serving = clients.map(c => {
    const inode = socketInode(titus.port, c.localPort!)
    t.ok(inode, `titus's end of the connection from port ${c.localPort} is in the connection table`)
    const holders = inode ? holdersOf(inode, all) : []
    t.equal(holders.length, 1, 'exactly one titus process holds the client socket (the supervisor let go of it)')
    return holders[0]!
  })
  t.not(serving[0], serving[1], 'two connections, two processes')
  t.ok(serving.every(pid => conns.includes(pid)), 'both are connection processes')

  const namespaces = serving.map(pid => ({ net: readlinkSync(`/proc/${pid}/ns/net`), pid: readlinkSync(`/proc/${pid}/ns/pid`) }))
  t.not(namespaces[0]!.net, namespaces[1]!.net, 'each has its own network namespace')
  t.not(namespaces[0]!.pid, namespaces[1]!.pid, 'each has its own PID namespace')
  t.match(interfaces(titus.pid).lines.find(line => /^\d+: lo:/.test(line)), /<[^>]*\bUP\b/, "control: lo is up in the supervisor's network namespace")
  for (const pid of serving) checkConfined(t, pid, `connection process ${pid}`, titus.pid, users.conn)

  // The key as the keyserver must hold it: its PEM text and the private scalar.
  const pem = readFileSync(leaf.key, 'utf8')
  const base64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '')
  const scalar = Buffer.from(createPrivateKey(pem).export({ format: 'jwk' }).d!, 'base64url')
  const needles = [Buffer.from(base64.slice(8, 56)), scalar, Buffer.from(scalar).reverse()]
  const [keyserver] = rolePids(all, 'keyserver')
  t.ok(keyserver, 'a keyserver runs')
  if (keyserver) {
    checkConfined(t, keyserver, `keyserver ${keyserver}`, titus.pid, users.keyserver)
    for (const pid of serving) t.not(readlinkSync(`/proc/${keyserver}/ns/net`), readlinkSync(`/proc/${pid}/ns/net`), `keyserver: not in connection process ${pid}'s network namespace`)
    // The control: the same scan does find the key where it lives, so a miss elsewhere means something.
    t.ok(foundInMemory(keyserver, needles).some(Boolean), "the scan finds the key in the keyserver's memory")
  }
  for (const pid of conns) {
    t.same(foundInMemory(pid, needles), [false, false, false], `connection process ${pid}: no trace of the private key in its memory`)
  }

  clients.forEach(c => c.end())
  t.ok(await waitUntil(() => serving.every(pid => !descendants(titus.pid).includes(pid)), 5000), 'each connection process exits with its connection')
})
