// Process bookkeeping for the benchmark: what a proxy's whole process tree costs (CPU, memory), and
// starting/stopping the programs we run so that nothing outlives the benchmark.
import { spawn, execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

// /proc/PID/stat fields after the parenthesised command name (which may itself contain spaces or ')').
function readStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) }
  } catch {
    return undefined // exited while we looked
  }
}

// The root and every live descendant (children re-parented away from the tree are lost, which none of
// the measured proxies do: they all run in the foreground and reap their own children).
export function processTree(rootPid) {
  const children = new Map()
  const stats = new Map()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const st = readStat(name)
    if (!st) continue
    const pid = Number(name)
    stats.set(pid, st)
    if (!children.has(st.ppid)) children.set(st.ppid, [])
    children.get(st.ppid).push(pid)
  }
  if (!stats.has(rootPid)) return []
  const tree = []
  const todo = [rootPid]
  while (todo.length > 0) {
    const pid = todo.pop()
    tree.push({ pid, ...stats.get(pid) })
    todo.push(...(children.get(pid) ?? []))
  }
  return tree
}

// CPU seconds used so far by the tree, including children that already exited: a reaped child's time
// is in its parent's cutime/cstime, a live (or zombie) one is counted by itself.
export function treeCpuSeconds(rootPid) {
  let ticks = 0
  for (const p of processTree(rootPid)) ticks += p.utime + p.stime + p.cutime + p.cstime
  return ticks / CLOCK_TICKS
}

// Proportional set size of the whole tree in KiB: shared pages (libraries, forked copy-on-write memory)
// are split among the processes sharing them, so the sum does not count them twice.
export function treePssKiB(rootPid) {
  let kib = 0
  for (const { pid } of processTree(rootPid)) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
      if (m) kib += Number(m[1])
    } catch {
      // exited while we looked
    }
  }
  return kib
}

const running = new Set()

// Starts a long-running program in its own process group, optionally pinned to CPUs with taskset
// (which execs, so the PID is the program's own). stdout/stderr go to logFd.
export function startProgram(cmd, args, { cpus, logFd, env, cwd } = {}) {
  const [file, argv] = cpus === undefined ? [cmd, args] : ['taskset', ['-c', cpus, cmd, ...args]]
  const child = spawn(file, argv, {
    detached: true,
    stdio: ['ignore', logFd ?? 'ignore', logFd ?? 'ignore'],
    env: env ?? process.env,
    cwd,
  })
  running.add(child)
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  child.exited.then(() => running.delete(child))
  return child
}

function signalTree(child, signal) {
  const pids = processTree(child.pid).map((p) => p.pid)
  try {
    process.kill(-child.pid, signal) // the group we created
  } catch {
    // already gone
  }
  for (const pid of pids) {
    try {
      process.kill(pid, signal) // descendants that made their own group or session
    } catch {
      // already gone
    }
  }
}

// SIGTERM the tree, then SIGKILL whatever is left after graceMs.
export async function stopProgram(child, graceMs = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) {
    signalTree(child, 'SIGKILL') // the root is gone; make sure its descendants are too
    return
  }
  const survivors = () => processTree(child.pid).length > 0
  signalTree(child, 'SIGTERM')
  const deadline = Date.now() + graceMs
  while (survivors() && Date.now() < deadline) await sleep(50)
  if (survivors()) signalTree(child, 'SIGKILL')
  await child.exited
}

// Synchronous last resort for exit paths (uncaught errors, signals).
export function killAllNow() {
  for (const child of running) signalTree(child, 'SIGKILL')
}

// Runs a program to completion and returns every JSON object it printed on stdout, one per line.
// onLine sees each parsed object as it arrives (and may write to the child's stdin).
export async function runJsonTool(cmd, args, { cpus, timeoutMs, onLine, env } = {}) {
  const [file, argv] = cpus === undefined ? [cmd, args] : ['taskset', ['-c', cpus, cmd, ...args]]
  const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env })
  running.add(child)
  const objects = []
  let stdout = ''
  let stderr = ''
  child.stdin.on('error', () => {}) // the tool may exit before reading its stdin
  child.stderr.on('data', (d) => (stderr += d))
  child.stdout.on('data', (d) => {
    stdout += d
    let nl
    while ((nl = stdout.indexOf('\n')) >= 0) {
      const line = stdout.slice(0, nl).trim()
      stdout = stdout.slice(nl + 1)
      if (!line.startsWith('{')) continue
      const obj = JSON.parse(line)
      objects.push(obj)
      Promise.resolve(onLine?.(obj, child)).catch((err) => child.emit('error', err))
    }
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs ?? 120_000)
  try {
    const { code, signal } = await new Promise((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (c, s) => resolve({ code: c, signal: s }))
    })
    if (code !== 0) {
      const detail = objects.find((o) => o.error) ?? stderr.trim().split('\n').slice(-3).join(' | ')
      throw new Error(`${cmd} ${args.join(' ')} exited with ${signal ?? code}: ${JSON.stringify(detail)}`)
    }
    return objects
  } finally {
    clearTimeout(timer)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    running.delete(child)
  }
}

// Waits until the tree uses less than `share` of a core over `windowMs` (a proxy still reaping the last
// run's connections or starting spare processes would otherwise bill the next measurement).
// Returns false if it never got that quiet within maxMs.
export async function waitQuiet(rootPid, { share = 0.05, windowMs = 300, maxMs = 30_000 } = {}) {
  const deadline = Date.now() + maxMs
  let last = treeCpuSeconds(rootPid)
  while (Date.now() < deadline) {
    await sleep(windowMs)
    const now = treeCpuSeconds(rootPid)
    if (now - last <= (share * windowMs) / 1000) return true
    last = now
  }
  return false
}
