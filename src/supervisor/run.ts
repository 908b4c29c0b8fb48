// `titus [options]`: load the configuration, start the supervisor, handle signals.
import { ConfigError, EXIT_CONFIG, describeConfig, loadConfig, type ConfigEntry, type TitusConfig } from '../config/index.js'
import type { CommandLineEntry } from '../cli.js'
import { CredentialError, loadVhosts } from './credentials.js'
import { daemonStarted, isDaemonChild, startDaemon, writePidFile } from './daemon.js'
import { log, setLogFormat } from './log.js'
import { describePlan, planSandbox, SandboxError, type SandboxPlan } from './sandbox.js'
import { Supervisor } from './supervisor.js'

export function toConfigEntries(entries: readonly CommandLineEntry[]): ConfigEntry[] {
  return entries.map(e => ({ name: e.name, value: e.value, file: '<command line>', line: e.position }))
}

// Options that take effect only at start (listeners, process setup, the sandbox plan). A reload that changes one
// keeps the running value and says so; everything else (vhosts, keys, certificates, TLS policy, log-format,
// spare and children limits, timeouts) applies.
const RESTART_OPTIONS: [option: string, key: keyof TitusConfig][] = [
  ['listen', 'listen'],
  ['daemon', 'daemon'],
  ['pid-file', 'pidFile'],
  ['transparent', 'transparent'],
  ['network-user', 'networkUser'],
  ['network-group', 'networkGroup'],
  ['keyserver-user', 'keyserverUser'],
  ['keyserver-group', 'keyserverGroup'],
  ['chroot', 'chroot'],
  ['isolation', 'isolation'],
]

function keep<K extends keyof TitusConfig>(into: TitusConfig, from: TitusConfig, key: K): void {
  into[key] = from[key]
}

// `next` as a reload can apply it to a titus running `running`.
function reloadable(running: TitusConfig, next: TitusConfig): TitusConfig {
  const applied = { ...next }
  for (const [option, key] of RESTART_OPTIONS) {
    if (JSON.stringify(running[key]) === JSON.stringify(next[key])) continue
    log('reload-needs-restart', { option })
    keep(applied, running, key)
  }
  return applied
}

// The configuration's log format is set before its credentials load, so their warnings come out in it.
function load(entries: ConfigEntry[]): { config: TitusConfig; vhosts: ReturnType<typeof loadVhosts> } {
  const config = loadConfig(entries)
  setLogFormat(config.logFormat)
  return { config, vhosts: loadVhosts(config) }
}

export async function runTitus(entries: readonly CommandLineEntry[], opts: { checkOnly: boolean }): Promise<number> {
  const configEntries = toConfigEntries(entries)
  let loaded: ReturnType<typeof load>
  let plan: SandboxPlan
  try {
    loaded = load(configEntries)
    if (!opts.checkOnly && loaded.config.listen.length === 0) throw new ConfigError('<command line>', 0, 'listen', 'no listen address or port configured')
    if (!opts.checkOnly && loaded.config.transparent !== 'no') {
      // Accepted in configurations (titus 0.4 has it) but not served yet: starting would forward wrongly.
      const at = loaded.config.locations.transparent ?? { file: '<configuration>', line: 0 }
      throw new ConfigError(at.file, at.line, 'transparent', `${loaded.config.transparent} is not supported yet (IP_TRANSPARENT is planned through titus-launcher); only no runs`)
    }
    plan = planSandbox(loaded.config)
  } catch (err) {
    if (err instanceof ConfigError || err instanceof CredentialError || err instanceof SandboxError) {
      process.stderr.write(`titus: ${err.message}\n`)
      return EXIT_CONFIG
    }
    throw err
  }
  if (opts.checkOnly) {
    process.stdout.write(describeConfig(loaded.config))
    return 0
  }
  if (loaded.config.daemon && !isDaemonChild()) return startDaemon(process.argv.slice(2))
  return serve(configEntries, loaded, plan)
}

async function serve(configEntries: ConfigEntry[], loaded: ReturnType<typeof load>, plan: SandboxPlan): Promise<number> {
  if (plan.kind === 'none' && plan.warning) {
    process.stderr.write(`\n*** titus WARNING: ${plan.warning} ***\n\n`)
  }
  log('start', { isolation: loaded.config.isolation, sandbox: describePlan(plan) })
  if (loaded.config.chroot) log('chroot-unused', { dir: loaded.config.chroot, reason: 'titus-launcher gives every sandboxed process an empty root of its own' })
  const supervisor = new Supervisor(loaded.config, loaded.vhosts, plan)
  try {
    await supervisor.start()
  } catch (err) {
    log('fatal', { error: (err as Error).message })
    await supervisor.stop(0)
    return 1
  }
  const removePidFile = loaded.config.pidFile ? writePidFile(loaded.config.pidFile) : () => {}
  process.on('exit', removePidFile)
  daemonStarted()
  let current = loaded.config // the one in force: SIGHUP may replace it
  // Reloads run one after another, so each starts from the configuration the one before put in force.
  let reloading: Promise<void> = Promise.resolve()
  return new Promise(resolve => {
    const shutdown = (signal: string) => {
      log('shutdown', { signal, active: supervisor.activeConnections })
      process.removeAllListeners('SIGTERM')
      process.removeAllListeners('SIGINT')
      void supervisor.stop(current.shutdownTimeout * 1000).then(() => resolve(0))
    }
    supervisor.onFatal = () => void supervisor.stop(0).then(() => resolve(1))
    process.on('SIGTERM', () => shutdown('SIGTERM'))
    process.on('SIGINT', () => shutdown('SIGINT'))
    const reload = async () => {
      let next: ReturnType<typeof load>
      try {
        // load() switches to the new log format first: the reload's own lines come out in it.
        next = load(configEntries)
      } catch (err) {
        setLogFormat(current.logFormat)
        log('reload-rejected', { error: (err as Error).message })
        return
      }
      const config = reloadable(current, next.config)
      try {
        await supervisor.reload(config, next.vhosts)
        current = config
        log('reloaded', {})
      } catch (err) {
        setLogFormat(current.logFormat)
        log('reload-failed', { error: (err as Error).message })
      }
    }
    process.on('SIGHUP', () => {
      reloading = reloading.then(reload)
    })
  })
}
