// Command line: titus 0.4's syntax (every configuration option as `--name value`) plus a few commands.
// cac renders --help and --version; the option pairs are collected here because cac's parser would turn
// dotted names such as --tlsv1.2 into nested objects.
import { cac } from 'cac'
import { OPTIONS, OPTION_BY_NAME } from './config/options.js'
import { VERSION } from './version.js'

export const EXIT_USAGE = 2

export interface CommandLineEntry {
  name: string
  value: string
  // 1-based position of the option among the arguments, for error messages.
  position: number
}

export interface CommandLine {
  command: 'run' | 'demo' | 'help' | 'version' | 'check-config'
  entries: CommandLineEntry[]
}

export class UsageError extends Error {}

const COMMANDS = new Set(['demo'])

export function parseCommandLine(argv: readonly string[]): CommandLine {
  const entries: CommandLineEntry[] = []
  let command: CommandLine['command'] = 'run'
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') return { command: 'help', entries }
    if (arg === '--version' || arg === '-V' || arg === '-v') return { command: 'version', entries }
    if (arg === '--check-config') {
      command = 'check-config'
      continue
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = arg.slice(2, eq < 0 ? undefined : eq)
      if (!OPTION_BY_NAME.has(name)) throw new UsageError(`unknown option --${name}`)
      let value: string
      if (eq >= 0) value = arg.slice(eq + 1)
      else {
        if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value (${OPTION_BY_NAME.get(name)!.arg})`)
        value = argv[++i]!
      }
      entries.push({ name, value, position: i + 1 })
      continue
    }
    if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`)
    if (command === 'run' && COMMANDS.has(arg)) {
      command = arg as 'demo'
      continue
    }
    throw new UsageError(`unexpected argument ${arg}`)
  }
  return { command, entries }
}

function helpRenderer() {
  const cli = cac('titus')
  cli.usage('[--option value]...\n\n  TLS-terminating proxy: private keys stay in an isolated keyserver, every connection gets its own sandboxed process.\n  Every configuration option can be given on the command line as --name value (see titus(8)).')
  cli.command('demo', 'Run a self-contained demo: self-signed certificate, demo backend, titus on 127.0.0.1:8443')
  cli.option('--check-config', 'Validate the configuration, print the effective configuration per vhost, and exit')
  for (const o of OPTIONS.filter(o => o.scope !== 'vhost-only')) cli.option(`--${o.name} <${o.arg}>`, o.default === undefined ? o.summary : `${o.summary} (default: ${o.default})`)
  cli.help()
  cli.version(VERSION)
  return cli
}

export async function main(argv: readonly string[]): Promise<number> {
  let parsed: CommandLine
  try {
    parsed = parseCommandLine(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`titus: ${err.message}\nRun titus --help for the list of options.\n`)
    return EXIT_USAGE
  }
  switch (parsed.command) {
    case 'help':
      helpRenderer().outputHelp()
      return 0
    case 'version':
      process.stdout.write(`titus ${VERSION}\n`)
      return 0
    case 'demo': {
      const { runDemo } = await import('./demo/demo.js')
      return runDemo(parsed.entries)
    }
    case 'check-config':
    case 'run': {
      const { runTitus } = await import('./supervisor/run.js')
      return runTitus(parsed.entries, { checkOnly: parsed.command === 'check-config' })
    }
  }
}
