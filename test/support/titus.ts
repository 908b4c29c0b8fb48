// Starts the built titus bundle under node, bun or deno and tracks every process it starts.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Teardown } from './certs.js'
import { launchable } from './programs.js'
import { exited, processesOf, sleep, spawnTracked, terminate, type Exit } from './process.js'

// 'standalone' is dist/titus, the executable made with bun build --compile: no JS runtime of its own.
export const RUNTIMES = ['node', 'bun', 'deno', 'standalone'] as const
export type Runtime = (typeof RUNTIMES)[number]

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
// TITUS_TEST_BUNDLE runs the suite against another build of titus.
export const TITUS_BUNDLE = process.env.TITUS_TEST_BUNDLE ?? `${ROOT}dist/titus.js`

function commandLine(runtime: Runtime, bundle: string): [string, string[]] {
  switch (runtime) {
    case 'node':
      return [process.execPath, [bundle]]
    case 'bun':
      return [launchable(`${ROOT}node_modules/.bin/bun`), [bundle]]
    case 'deno':
      return [launchable(`${ROOT}node_modules/.bin/deno`), ['run', '-A', bundle]]
    case 'standalone':
      return [launchable(`${ROOT}dist/titus`, [`${ROOT}dist/titus-launcher`]), []]
  }
}

// As root titus sandboxes its children through titus-launcher, which needs unprivileged users to run them as.
const SANDBOX_USERS =
  process.getuid?.() === 0
    ? ['--network-user', process.env.TITUS_TEST_NETWORK_USER ?? 'nobody', '--keyserver-user', process.env.TITUS_TEST_KEYSERVER_USER ?? 'nobody']
    : []

export interface TitusOptions {
  runtime?: Runtime
  backendPort: number
  key: string
  cert: string
  // Further command-line options, e.g. ['--alpn', 'h2,http/1.1'].
  args?: string[]
  readyTimeoutMs?: number
  // Another copy of titus.js to run (not with 'standalone'), e.g. one beside a connection-process script of a test's own.
  bundle?: string
  // A command that titus runs under, put in front of the runtime: e.g. setpriv to run it as another user.
  wrapper?: string[]
}

export interface Titus {
  port: number
  pid: number
  runtime: Runtime
  // stderr so far, one entry per line.
  log: string[]
  // Resolves with the first log line (past or future) matching pattern.
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>
  // Resolves when the supervisor has exited (by itself, or through stop()).
  exited: Promise<Exit>
  // Live processes belonging to this instance, the supervisor included.
  processes(): number[]
  // Stops titus (SIGTERM, SIGKILL after 5 s), waits for its processes to go, kills and returns any that stayed.
  stop(): Promise<Exit & { leftovers: number[] }>
}

export async function startTitus(t: Teardown, options: TitusOptions): Promise<Titus> {
  const runtime = options.runtime ?? 'node'
  const bundle = options.bundle ?? TITUS_BUNDLE
  const [runtimeCommand, runtimeArgs] = commandLine(runtime, bundle)
  const [command, ...prefix] = [...(options.wrapper ?? []), runtimeCommand, ...runtimeArgs]
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run npm run build`)
  const tag = randomBytes(8).toString('hex')
  const args = [
    ...prefix,
    '--listen', '127.0.0.1:0',
    '--backend', '127.0.0.1',
    '--backend-port', String(options.backendPort),
    '--key', options.key,
    '--cert', options.cert,
    ...SANDBOX_USERS,
    ...(options.args ?? []),
  ]
  const child = spawnTracked(t, command!, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // own process group, so children can be found after the supervisor is gone
    env: { ...process.env, TITUS_TEST_INSTANCE: tag },
  })
  const pid = child.pid!
  const log: string[] = []
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>()
  let partial = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop()!
    for (const line of lines) {
      log.push(line)
      for (const w of waiters) if (w.pattern.test(line)) {
        waiters.delete(w)
        w.resolve(line)
      }
    }
  })
  const exit = exited(child)

  const describe = () => `titus (${runtime}) ${args.join(' ')}\n--- stderr ---\n${[...log, partial].join('\n')}`
  function waitForLog(pattern: RegExp, timeoutMs = 5000): Promise<string> {
    const seen = log.find(line => pattern.test(line))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const waiter = {
        pattern,
        resolve: (line: string) => {
          clearTimeout(timer)
          resolve(line)
        },
      }
      const timer = setTimeout(() => {
        waiters.delete(waiter)
        reject(new Error(`no log line matching ${pattern} within ${timeoutMs} ms from ${describe()}`))
      }, timeoutMs)
      waiters.add(waiter)
      void exit.then(e => {
        if (!waiters.has(waiter)) return
        waiters.delete(waiter)
        clearTimeout(timer)
        reject(new Error(`titus exited (${e.code ?? e.signal}) before logging ${pattern}: ${describe()}`))
      })
    })
  }

  const processes = () => processesOf(tag, pid)
  let stopped: Promise<Exit & { leftovers: number[] }> | undefined
  const stop = () =>
    (stopped ??= (async () => {
      const result = await terminate(child, 5000)
      let leftovers = processes()
      for (let waited = 0; leftovers.length > 0 && waited < 3000; waited += 100) {
        await sleep(100)
        leftovers = processes()
      }
      for (const stray of leftovers) process.kill(stray, 'SIGKILL')
      return { ...result, leftovers }
    })())
  t.teardown(async () => {
    const { leftovers } = await stop()
    if (leftovers.length > 0) throw new Error(`titus (${runtime}) left processes behind: ${leftovers.join(', ')}`)
  })

  const ready = await waitForLog(/listening on 127\.0\.0\.1:\d+/, options.readyTimeoutMs ?? 20000)
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(ready)![1])
  return { port, pid, runtime, log, waitForLog, exited: exit, processes, stop }
}
