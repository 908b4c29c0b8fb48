// Starting titus's own child processes (connection processes and the keyserver) on the runtime we run on,
// through titus-launcher when the sandbox plan says so.
import { spawn, type ChildProcess } from 'node:child_process'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { launcherCommand } from '../launcher/command.js'
import { bundleBeside, sandboxNeeds, selfCommand } from '../runtime/runtime.js'
import type { SandboxPlan } from './sandbox.js'

export type Role = 'conn' | 'keyserver'

// The argument that makes titus start as one of its internal roles instead of the CLI.
export const ROLE_ARGUMENT = '--internal-role'

// The IPC channel is the child's fd 3 (stdio index 3); Node-compatible runtimes find it through this variable.
const IPC_FD = 3

const script = fileURLToPath(import.meta.url)

// Connection processes start from their own lean bundle (dist/titus-conn.js, src/conn/entry.ts) when it is
// there: every connection pays for parsing the bundle it starts from.
const ROLE_BUNDLES: Record<Role, string | undefined> = { conn: 'titus-conn.js', keyserver: undefined }

function roleEntry(role: Role): string {
  const lean = ROLE_BUNDLES[role]
  return (lean && bundleBeside(script, lean)) ?? script
}

export type LauncherPlan = Extract<SandboxPlan, { kind: 'launcher' }>

// Built once per plan and role: ldd and the realpath lookups are not repeated for every connection.
const commandsByPlan = new WeakMap<LauncherPlan, Map<string, { file: string; args: string[] }>>()

// The titus-launcher command that starts `entry` (titus's own bundle unless a test passes another script) in
// `role` on the runtime we run on: the runtime's needs and libraries bound, the IPC channel kept, nothing else.
export function roleLauncherCommand(plan: LauncherPlan, role: Role, entry = roleEntry(role)): { file: string; args: string[] } {
  let commands = commandsByPlan.get(plan)
  if (!commands) commandsByPlan.set(plan, (commands = new Map()))
  const key = `${role}\0${entry}`
  let command = commands.get(key)
  if (!command) {
    const self = selfCommand(entry, [ROLE_ARGUMENT, role])
    // A standalone executable runs its embedded entry, which is no file to resolve or bind.
    const realEntry = self.args.includes(entry) ? realpathSync(entry) : entry
    const needs = sandboxNeeds(realEntry)
    const who = role === 'conn' ? plan.conn : plan.keyserver
    command = launcherCommand({
      launcher: plan.launcher,
      profile: role,
      user: who.user,
      group: who.group,
      program: realpathSync(self.file),
      args: self.args.map(a => (a === entry ? realEntry : a)),
      files: needs.files.map(f => realpathSync(f)),
      proc: needs.proc,
      env: { ...needs.env, NODE_CHANNEL_FD: String(IPC_FD), NODE_CHANNEL_SERIALIZATION_MODE: 'json' },
      keepFds: [IPC_FD],
    })
    commands.set(key, command)
  }
  return command
}

export function spawnRole(role: Role, plan: SandboxPlan): ChildProcess {
  const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc']
  if (plan.kind === 'launcher') {
    const { file, args } = roleLauncherCommand(plan, role)
    return spawn(file, args, { stdio, env: {} })
  }
  const { file, args } = selfCommand(roleEntry(role), [ROLE_ARGUMENT, role])
  return spawn(file, args, {
    stdio,
    // Only what the runtime needs: a child never inherits the supervisor's environment.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(process.env.DENO_DIR ? { DENO_DIR: process.env.DENO_DIR } : {}) },
  })
}
