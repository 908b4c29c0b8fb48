// A live titus, inspected from outside as root: every connection is served by its own confined process, and
// the private key is in the keyserver's memory and in no connection process's memory.
import t from 'tap'
import { closeSync, openSync, readFileSync, readSync, readdirSync, readlinkSync } from 'node:fs'
import { createPrivateKey } from 'node:crypto'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { createCertSet } from './support/certs.js'
import { startEchoBackend } from './support/backends.js'
import { startTitus } from './support/titus.js'
import { childPids, procStatus, sandboxUsers, skipUnlessRoot, waitUntil } from './fixtures/probe-harness.js'

// The whole tree below pid: the launcher puts each sandbox in a session of its own, so process groups miss them.
function descendants(pid: number): number[] {
  const children = childPids(pid)
  return [...children, ...children.flatMap(descendants)]
}

// Processes running a titus role (the runtime itself, not the launcher wrapping it).
function rolePids(pids: number[], role: 'conn' | 'keyserver'): number[] {
  return pids.filter(pid => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')
      return !argv[0]!.endsWith('titus-launcher') && argv.includes('--internal-role') && argv.includes(role)
    } catch {
      return false
    }
  })
}

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

  const self = { net: readlinkSync('/proc/self/ns/net'), pid: readlinkSync('/proc/self/ns/pid') }
  const namespaces = serving.map(pid => ({ net: readlinkSync(`/proc/${pid}/ns/net`), pid: readlinkSync(`/proc/${pid}/ns/pid`) }))
  t.not(namespaces[0]!.net, namespaces[1]!.net, 'each has its own network namespace')
  t.not(namespaces[0]!.pid, namespaces[1]!.pid, 'each has its own PID namespace')
  for (const [i, pid] of serving.entries()) {
    const ns = namespaces[i]!
    t.not(ns.net, self.net, `connection process ${pid}: not in the host network namespace`)
    t.not(ns.pid, self.pid, `connection process ${pid}: not in the host PID namespace`)
    const status = procStatus(pid)
    t.equal(status.Uid!.split(/\s+/)[0], String(users.conn.uid), `connection process ${pid}: runs as ${users.conn.user}`)
    t.equal(status.Seccomp, '2', `connection process ${pid}: seccomp filter`)
    t.equal(status.NoNewPrivs, '1', `connection process ${pid}: no new privileges`)
    t.equal(status.CapEff, '0000000000000000', `connection process ${pid}: no capabilities`)
  }

  // The key as the keyserver must hold it: its PEM text and the private scalar.
  const pem = readFileSync(leaf.key, 'utf8')
  const base64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '')
  const scalar = Buffer.from(createPrivateKey(pem).export({ format: 'jwk' }).d!, 'base64url')
  const needles = [Buffer.from(base64.slice(8, 56)), scalar, Buffer.from(scalar).reverse()]
  const [keyserver] = rolePids(all, 'keyserver')
  t.ok(keyserver, 'a keyserver runs')
  if (keyserver) {
    t.equal(procStatus(keyserver).Uid!.split(/\s+/)[0], String(users.keyserver.uid), `keyserver runs as ${users.keyserver.user}`)
    // The control: the same scan does find the key where it lives, so a miss elsewhere means something.
    t.ok(foundInMemory(keyserver, needles).some(Boolean), "the scan finds the key in the keyserver's memory")
  }
  for (const pid of conns) {
    t.same(foundInMemory(pid, needles), [false, false, false], `connection process ${pid}: no trace of the private key in its memory`)
  }

  clients.forEach(c => c.end())
  t.ok(await waitUntil(() => serving.every(pid => !descendants(titus.pid).includes(pid)), 5000), 'each connection process exits with its connection')
})
