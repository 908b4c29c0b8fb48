// Which JavaScript runtime titus runs on, and how to start another titus process on the same one.
// This folder is the only place that knows about Node/Bun/Deno differences.

import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

declare const Bun: { version: string } | undefined
declare const Deno: { version: { deno: string }; execPath(): string } | undefined

export type RuntimeName = 'node' | 'bun' | 'deno'

export interface RuntimeInfo {
  name: RuntimeName
  version: string
  // Running as a `bun build --compile` executable: the executable is the whole program.
  standalone: boolean
}

function detect(): RuntimeInfo {
  if (typeof Deno !== 'undefined') return { name: 'deno', version: Deno.version.deno, standalone: false }
  if (typeof Bun !== 'undefined') {
    // A compiled Bun executable runs its embedded entry from the virtual /$bunfs/ filesystem.
    const standalone = (process.argv[1] ?? '').startsWith('/$bunfs/') || import.meta.url.includes('$bunfs')
    return { name: 'bun', version: Bun.version, standalone }
  }
  return { name: 'node', version: process.versions.node, standalone: false }
}

export const runtime: RuntimeInfo = detect()

// The command line that starts `script` (a bundle path) with `args` on this runtime, for child processes.
export function selfCommand(script: string, args: readonly string[]): { file: string; args: string[] } {
  if (runtime.standalone) return { file: process.execPath, args: [...args] }
  if (runtime.name === 'deno') return { file: process.execPath, args: ['run', '-A', script, ...args] }
  return { file: process.execPath, args: [script, ...args] }
}

// Another bundle of ours named `name` in the same folder as `script`, if there is one. A standalone executable has
// one embedded entry that serves every role, so there is none.
export function bundleBeside(script: string, name: string): string | undefined {
  if (runtime.standalone) return undefined
  const path = join(dirname(script), name)
  return existsSync(path) ? path : undefined
}

// What the runtime itself needs inside an empty sandbox root, besides its shared libraries.
export interface SandboxNeeds {
  files: string[] // bind-mounted read-only at the same path
  proc: boolean // Bun and Deno read /proc/self/maps (Deno also /proc/self/exe)
  env: Record<string, string>
}

export function sandboxNeeds(script: string): SandboxNeeds {
  const exe = process.execPath
  switch (runtime.name) {
    case 'node':
      return { files: [exe, script], proc: false, env: {} }
    case 'bun':
      return { files: runtime.standalone ? [exe] : [exe, script], proc: true, env: {} }
    case 'deno':
      // No cache or update check: the root is empty and read-only.
      return { files: [exe, script], proc: true, env: { DENO_NO_UPDATE_CHECK: '1', DENO_DIR: '/nonexistent' } }
  }
}
