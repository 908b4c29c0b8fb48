// How titus's children are confined: through titus-launcher (namespaces, empty read-only root, uid drop,
// seccomp) when we are root or the launcher is installed setuid root; otherwise not at all, loudly.
import { execFileSync } from 'node:child_process'
import { existsSync, realpathSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { ConfigError, type TitusConfig } from '../config/index.js'
import { runtime } from '../runtime/runtime.js'

export interface Identity {
  user: string
  group: string
}

export type SandboxPlan =
  | { kind: 'launcher'; launcher: string; conn: Identity; keyserver: Identity }
  | { kind: 'none'; warning?: string }

export class SandboxError extends Error {}

const LAUNCHER_NAME = 'titus-launcher'

// Next to the bundle or executable first (dist/ or an unpacked release), then the usual install places.
function findLauncher(): string | undefined {
  const places = [
    join(dirname(process.argv[1] ?? ''), LAUNCHER_NAME),
    join(dirname(process.execPath), LAUNCHER_NAME),
    `/usr/local/libexec/titus/${LAUNCHER_NAME}`,
    `/usr/libexec/titus/${LAUNCHER_NAME}`,
    `/usr/local/bin/${LAUNCHER_NAME}`,
    `/usr/bin/${LAUNCHER_NAME}`,
  ]
  return places.find(p => existsSync(p))
}

function isSetuidRoot(path: string): boolean {
  const st = statSync(path)
  return st.uid === 0 && (st.mode & 0o4000) !== 0
}

// The user options' problems are configuration errors, located where the option was set (nowhere, if it is missing).
function identity(config: TitusConfig, option: 'network-user' | 'keyserver-user', user: string | undefined, group: string | undefined): Identity {
  const at = config.locations[option] ?? { file: '<configuration>', line: 0 }
  const problem = (text: string) => new ConfigError(at.file, at.line, option, text)
  if (!user) throw problem('must be set: titus runs its sandboxed processes as that user (a dedicated one, not root)')
  if (group) return { user, group }
  try {
    return { user, group: execFileSync('id', ['-gn', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() }
  } catch {
    throw problem(`unknown user ${user}`)
  }
}

export function planSandbox(config: TitusConfig): SandboxPlan {
  const root = process.getuid?.() === 0
  if (config.isolation === 'none') {
    if (root) throw new SandboxError('isolation none is for development and refuses to run as root')
    return { kind: 'none' }
  }
  const found = findLauncher()
  const launcher = found && realpathSync(found)
  if (root || (launcher && isSetuidRoot(launcher))) {
    if (!launcher) throw new SandboxError(`${LAUNCHER_NAME} not found next to titus or in /usr/local/libexec/titus; refusing to run unsandboxed as root`)
    return {
      kind: 'launcher',
      launcher,
      conn: identity(config, 'network-user', config.networkUser, config.networkGroup),
      keyserver: identity(config, 'keyserver-user', config.keyserverUser, config.keyserverGroup),
    }
  }
  return {
    kind: 'none',
    warning:
      `NOT SANDBOXED: not running as root and no setuid-root ${LAUNCHER_NAME} found. The keyserver and connection processes ` +
      `run as uid ${process.getuid?.()} with full access to the network and the file system. Use this for development only.`,
  }
}

export function describePlan(plan: SandboxPlan): string {
  return plan.kind === 'launcher' ? `launcher ${plan.launcher} (connections as ${plan.conn.user}, keyserver as ${plan.keyserver.user}, runtime ${runtime.name})` : 'none'
}
