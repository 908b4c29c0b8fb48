// Builds the titus-launcher command line for one sandboxed program.
// The launcher binds only what it is told to; the shared libraries a program needs
// are found here with ldd, which runs the (root-owned, trusted) program's dynamic
// loader in tracing mode. Never point this at an untrusted binary.
import { execFileSync } from 'node:child_process'

export type SandboxProfile = 'conn' | 'keyserver'

export interface SandboxSpec {
  /** Path of the titus-launcher binary. */
  launcher: string
  profile: SandboxProfile
  user: string
  group: string
  /** Absolute path of the runtime or compiled binary; root-owned, not writable. */
  program: string
  args: readonly string[]
  /** More files or directories to bind read-only at the same path (scripts, bundles). The program itself may be
   * among them: the launcher binds it anyway, so it is left out here. */
  files?: readonly string[]
  /** Mount a fresh read-only /proc (Bun needs /proc/self/maps, Deno /proc/self/exe). */
  proc?: boolean
  /** The program's whole environment. */
  env?: Readonly<Record<string, string>>
  /** Inherited fds beyond 0-2 that the program keeps (the IPC channel). */
  keepFds?: readonly number[]
  /** RLIMIT_NOFILE for the program; the launcher defaults to 64. */
  nofile?: number
}

const librariesByProgram = new Map<string, readonly string[]>()

/** Absolute paths of the shared libraries and the loader `program` needs, as ldd names them. */
export function sharedLibraries (program: string): readonly string[] {
  let libraries = librariesByProgram.get(program)
  if (libraries === undefined) {
    libraries = parseLdd(runLdd(program))
    librariesByProgram.set(program, libraries)
  }
  return libraries
}

function runLdd (program: string): string {
  try {
    return execFileSync('ldd', [program], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (error) {
    // ldd fails on static binaries, which need nothing.
    const output = String((error as { stdout?: unknown }).stdout ?? '') + String((error as { stderr?: unknown }).stderr ?? '')
    if (/not a dynamic executable|statically linked/.test(output)) return ''
    throw error
  }
}

// Lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
// "/lib64/ld-linux-x86-64.so.2 (0x...)" or "linux-vdso.so.1 (0x...)" (no file).
function parseLdd (output: string): readonly string[] {
  const paths = new Set<string>()
  for (const line of output.split('\n')) {
    const match = /(?:=>\s*|^\s*)(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line)
    if (match) paths.add(match[1]!)
  }
  return [...paths]
}

/** The file and arguments to spawn so that `spec.program` runs inside the sandbox. */
export function launcherCommand (spec: SandboxSpec): { file: string, args: string[] } {
  const args = ['--profile', spec.profile, '--user', spec.user, '--group', spec.group]
  const binds = new Set([...sharedLibraries(spec.program), ...(spec.files ?? [])])
  binds.delete(spec.program)
  for (const path of binds) args.push('--ro-bind', path)
  if (spec.proc) args.push('--proc')
  for (const [name, value] of Object.entries(spec.env ?? {})) args.push('--env', `${name}=${value}`)
  for (const fd of spec.keepFds ?? []) args.push('--keep-fd', String(fd))
  if (spec.nofile !== undefined) args.push('--nofile', String(spec.nofile))
  args.push('--', spec.program, ...spec.args)
  return { file: spec.launcher, args }
}
