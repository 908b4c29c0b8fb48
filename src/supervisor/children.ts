// Starting titus's own child processes (connection processes and the keyserver) on the runtime we run on.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { selfCommand } from '../runtime/runtime.js'

export type Role = 'conn' | 'keyserver'

// The argument that makes titus start as one of its internal roles instead of the CLI.
export const ROLE_ARGUMENT = '--internal-role'

const script = fileURLToPath(import.meta.url)

export function spawnRole(role: Role): ChildProcess {
  const { file, args } = selfCommand(script, [ROLE_ARGUMENT, role])
  return spawn(file, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Only what the runtime needs: a child never inherits the supervisor's environment secrets.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(process.env.DENO_DIR ? { DENO_DIR: process.env.DENO_DIR } : {}) },
  })
}
