// Child processes for tests: every one is tracked so a test file can never leave one behind.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import type { Teardown } from './certs.js'

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

// Resolves when the process has exited and its stdio is closed.
export function exited(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise(resolve => child.once('close', (code, signal) => resolve({ code, signal })))
}

// SIGTERM, then SIGKILL after graceMs.
export async function terminate(child: ChildProcess, graceMs = 3000): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) return exited(child)
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  try {
    return await exited(child)
  } finally {
    clearTimeout(timer)
  }
}

// spawn() whose process is killed on teardown if the test did not wait for it.
export function spawnTracked(t: Teardown, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options })
  t.teardown(async () => {
    await terminate(child, 1000)
  })
  return child
}

export interface Collected extends Exit {
  stdout: Buffer
  stderr: string
}

export interface RunOptions {
  input?: Buffer | string
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
}

// Runs a command to completion, feeding input on stdin; kills it after timeoutMs.
export async function run(t: Teardown, command: string, args: string[], options: RunOptions = {}): Promise<Collected & { timedOut: boolean }> {
  const child = spawnTracked(t, command, args, { env: options.env })
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  child.stdout!.on('data', (b: Buffer) => stdout.push(b))
  child.stderr!.on('data', (b: Buffer) => stderr.push(b))
  child.stdin!.on('error', () => {}) // the program may exit before reading all input
  child.stdin!.end(options.input ?? '')
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, options.timeoutMs ?? 20000)
  const exit = await exited(child)
  clearTimeout(timer)
  return { ...exit, timedOut, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString() }
}

// Live processes that carry `TITUS_TEST_INSTANCE=<tag>` in their environment or belong to process group pgid:
// everything a titus instance started, even after its supervisor died.
export function processesOf(tag: string, pgid: number): number[] {
  const marker = Buffer.from(`TITUS_TEST_INSTANCE=${tag}\0`)
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
      // Fields after the parenthesised command name: state ppid pgrp ...
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (state === 'Z') continue
      if (Number(pgrp) === pgid || readFileSync(`/proc/${pid}/environ`).includes(marker)) found.push(pid)
    } catch {
      // exited while we looked, or not ours to read
    }
  }
  return found
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

// Polls `probe` every 50 ms until it returns something other than undefined or false, and resolves with that;
// rejects, naming `what`, after `timeoutMs`.
export async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(50)
  }
}
