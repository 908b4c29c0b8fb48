// `daemon yes` and `pid-file`, as in titus 0.4. JS runtimes cannot fork, so the daemon is a detached copy
// of ourselves; the foreground process waits until it is listening (or failed) and exits with its status.
import { spawn } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { selfCommand } from '../runtime/runtime.js'

const DAEMON_CHILD_ENV = 'TITUS_DAEMON_CHILD'

export function isDaemonChild(): boolean {
  return process.env[DAEMON_CHILD_ENV] === '1'
}

// Foreground side: start the detached copy and wait for its verdict.
export function startDaemon(argv: readonly string[]): Promise<number> {
  const { file, args } = selfCommand(fileURLToPath(import.meta.url), argv)
  const child = spawn(file, args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, [DAEMON_CHILD_ENV]: '1' },
  })
  return new Promise(resolve => {
    child.on('message', (m: unknown) => {
      if ((m as { t?: string }).t !== 'started') return
      child.disconnect()
      child.unref()
      resolve(0)
    })
    child.on('exit', code => resolve(code ?? 1))
  })
}

// Daemon side: tell the foreground process we are up, and stop sharing its terminal session.
export function daemonStarted(): void {
  if (!isDaemonChild() || !process.send) return
  process.send({ t: 'started' })
  process.disconnect?.()
}

export function writePidFile(path: string): () => void {
  writeFileSync(path, `${process.pid}\n`)
  return () => rmSync(path, { force: true })
}
