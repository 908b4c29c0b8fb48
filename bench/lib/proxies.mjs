// The proxies under test, each configured the same way: TLS 1.2 and 1.3 enabled, one certificate, one
// backend, error-only logging, one CPU's worth of workers (the whole proxy is pinned to one core; see
// docs/benchmarks.md for why).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

function has(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function firstLine(cmd, args) {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return out.split('\n').find((l) => l.trim() !== '')?.trim() ?? ''
  } catch (err) {
    // stunnel -version prints to stderr and exits non-zero
    return `${err.stderr ?? ''}`.split('\n').find((l) => /\d+\.\d+/.test(l))?.trim() ?? 'unknown'
  }
}

// As root, titus sandboxes every child through titus-launcher and needs the two unprivileged users it
// drops to; as anyone else it runs unsandboxed (development mode) and needs none.
const TITUS_USERS = { network: 'titus-net', keyserver: 'titus-keys' }
const asRoot = process.getuid?.() === 0

function userExists(name) {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function titus(name, runtime, isolation, root) {
  const bin = join(root, 'node_modules', '.bin')
  const script = join(root, 'dist', 'titus.js')
  const launch = {
    node: [process.execPath, [script]],
    bun: [join(bin, 'bun'), [script]],
    deno: [join(bin, 'deno'), ['run', '-A', script]],
    standalone: [join(root, 'dist', 'titus'), []],
  }[runtime]
  return {
    name,
    idleConns: isolation === 'strict' ? 50 : undefined,
    hsWarmup: isolation === 'strict' ? 8 : undefined,
    workers: {
      strict: 'supervisor + keyserver + 1 process per connection, 8 spares kept started',
      pooled: 'supervisor + keyserver + pooled connection processes',
      none: 'supervisor + keyserver + connection processes, unsandboxed',
    }[isolation] + (asRoot ? ' (sandboxed through titus-launcher)' : ' (not root: unsandboxed)'),
    missing() {
      if (!existsSync(script)) return `${script} not built (npm run build)`
      if (!existsSync(launch[0])) return `${launch[0]} not found`
      const absent = Object.values(TITUS_USERS).filter((u) => !userExists(u))
      if (asRoot && absent.length > 0) return `running as root, titus needs the sandbox users ${absent.join(', ')}`
      return undefined
    },
    // The bundle may be older or newer than the checkout, so name it by its hash too.
    version: () =>
      `${firstLine('git', ['-C', root, 'describe', '--always', '--dirty'])}, dist/titus.js sha256 ${createHash('sha256').update(readFileSync(script)).digest('hex').slice(0, 12)}, ` +
      `on ${runtime} ${firstLine(launch[0], ['--version']).replace(/^v/, '')}`,
    command({ port, backendPort, cert }) {
      return [
        launch[0],
        [
          ...launch[1],
          '--listen', `127.0.0.1:${port}`,
          '--backend', '127.0.0.1',
          '--backend-port', String(backendPort),
          '--key', cert.key,
          '--cert', cert.crt,
          '--isolation', isolation,
          '--min-spare-children', '8',
          '--max-children', '1000',
          ...(asRoot ? ['--network-user', TITUS_USERS.network, '--keyserver-user', TITUS_USERS.keyserver] : []),
        ],
      ]
    },
  }
}

const stunnel = {
  name: 'stunnel',
  workers: '1 process, 1 thread per connection',
  missing: () => (has('stunnel') ? undefined : 'stunnel not installed'),
  version: () => firstLine('stunnel', ['-version']),
  command({ port, backendPort, cert, dir }) {
    const file = join(dir, 'stunnel.conf')
    writeFileSync(
      file,
      [
        'foreground = yes',
        'pid =',
        'syslog = no',
        'debug = err',
        '[bench]',
        `accept = 127.0.0.1:${port}`,
        `connect = 127.0.0.1:${backendPort}`,
        `cert = ${cert.crt}`,
        `key = ${cert.key}`,
        'sslVersionMin = TLSv1.2',
        'sslVersionMax = TLSv1.3',
        '',
      ].join('\n'),
    )
    return ['stunnel', [file]]
  },
}

const hitch = {
  name: 'hitch',
  workers: '1 worker process (+ its manager and helper processes)',
  missing: () => (has('hitch') ? undefined : 'hitch not installed'),
  version: () => firstLine('hitch', ['--version']),
  command({ port, backendPort, cert, dir }) {
    const file = join(dir, 'hitch.conf')
    writeFileSync(
      file,
      [
        `frontend = "[127.0.0.1]:${port}"`,
        `backend = "[127.0.0.1]:${backendPort}"`,
        `pem-file = "${cert.pem}"`,
        'workers = 1',
        'backlog = 1024',
        'tls-protos = TLSv1.2 TLSv1.3',
        'daemon = off',
        'log-level = 1',
        // hitch refuses to run its workers as root
        'user = "nobody"',
        'group = "nogroup"',
        '',
      ].join('\n'),
    )
    return ['hitch', ['--config', file]]
  },
}

const haproxy = {
  name: 'haproxy',
  workers: '1 process, nbthread 1',
  missing: () => (has('haproxy') ? undefined : 'haproxy not installed'),
  version: () => firstLine('haproxy', ['-v']),
  command({ port, backendPort, cert, dir }) {
    const file = join(dir, 'haproxy.cfg')
    writeFileSync(
      file,
      [
        'global',
        '  nbthread 1',
        '  maxconn 4096', // within the default fd limit
        '  ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3',
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 300s',
        '  timeout server 300s',
        'frontend bench',
        `  bind 127.0.0.1:${port} ssl crt ${cert.pem}`,
        '  default_backend backend',
        'backend backend',
        `  server b1 127.0.0.1:${backendPort}`,
        '',
      ].join('\n'),
    )
    return ['haproxy', ['-f', file, '-db']]
  },
}

// In run order; titus-node is the reference every ratio is computed against. `optional` ones run only
// when named with --only.
export function allProxies(root) {
  return [
    titus('titus-node', 'node', 'strict', root),
    titus('titus-node-pooled', 'node', 'pooled', root),
    { ...titus('titus-node-none', 'node', 'none', root), optional: true },
    titus('titus-bun', 'bun', 'strict', root),
    titus('titus-deno', 'deno', 'strict', root),
    titus('titus-standalone', 'standalone', 'strict', root),
    stunnel,
    hitch,
    haproxy,
  ]
}

export const REFERENCE = 'titus-node'
