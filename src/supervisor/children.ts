// Starting titus's own child processes (connection processes and the keyserver) on the runtime we run on,
// through titus-launcher when the sandbox plan says so.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { sandboxNeeds, selfCommand } from '../runtime/runtime.js'
import type { SandboxPlan } from './sandbox.js'

export type Role = 'conn' | 'keyserver'

// The argument that makes titus start as one of its internal roles instead of the CLI.
export const ROLE_ARGUMENT = '--internal-role'

// The IPC channel is the child's fd 3 (stdio index 3); Node-compatible runtimes find it through this variable.
const IPC_FD = 3

const script = fileURLToPath(import.meta.url)

// Shared libraries of an executable, from ldd: they are bind-mounted into the empty root.
function sharedLibraries(exe: string): string[] {
  const out = execFileSync('ldd', [exe], { encoding: 'utf8' })
  const libs = new Set<string>()
  // Paths as the dynamic loader looks them up (the launcher follows symlinks when it binds them).
  for (const m of out.matchAll(/(\/[^\s)]+)/g)) libs.add(m[1]!)
  return [...libs]
}

let launcherPrefix: Map<Role, string[]> | undefined

function launcherArgs(plan: Extract<SandboxPlan, { kind: 'launcher' }>, role: Role): string[] {
  launcherPrefix ??= new Map()
  let prefix = launcherPrefix.get(role)
  if (!prefix) {
    const needs = sandboxNeeds(script)
    const exe = realpathSync(process.execPath)
    const binds = new Set([...needs.files.map(f => realpathSync(f)), ...sharedLibraries(exe)])
    binds.delete(exe) // the launcher binds the program itself
    const who = role === 'conn' ? plan.conn : plan.keyserver
    prefix = ['--profile', role, '--user', who.user, '--group', who.group]
    for (const b of binds) prefix.push('--ro-bind', b)
    if (needs.proc) prefix.push('--proc')
    for (const [k, v] of Object.entries({ ...needs.env, NODE_CHANNEL_FD: String(IPC_FD), NODE_CHANNEL_SERIALIZATION_MODE: 'json' })) {
      prefix.push('--env', `${k}=${v}`)
    }
    prefix.push('--keep-fd', String(IPC_FD))
    launcherPrefix.set(role, prefix)
  }
  return prefix
}

export function spawnRole(role: Role, plan: SandboxPlan): ChildProcess {
  const { file, args } = selfCommand(script, [ROLE_ARGUMENT, role])
  const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc']
  if (plan.kind === 'launcher') {
    return spawn(plan.launcher, [...launcherArgs(plan, role), '--', realpathSync(file), ...args.map(a => (a === script ? realpathSync(a) : a))], { stdio, env: {} })
  }
  return spawn(file, args, {
    stdio,
    // Only what the runtime needs: a child never inherits the supervisor's environment.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(process.env.DENO_DIR ? { DENO_DIR: process.env.DENO_DIR } : {}) },
  })
}
