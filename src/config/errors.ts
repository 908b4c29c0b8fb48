// Configuration errors: every one names where the offending text is, so the user can go and fix it.

// titus 0.4 exits with 5 on a configuration error and 2 on malformed arguments; we keep both.
export const EXIT_CONFIG = 5
export const EXIT_USAGE = 2

// The `file` of entries that came from argv.
export const COMMAND_LINE = '<command line>'

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    // 1-based; 0 when the problem has no single line (e.g. a required option given nowhere).
    readonly line: number,
    readonly option: string,
    readonly problem: string,
  ) {
    super(`${line > 0 ? `${file}:${line}` : file}: ${option}: ${problem}`)
    this.name = 'ConfigError'
  }
}

// Where an entry came from, for ConfigError and for `vhost` sources.
export interface Located {
  file: string
  line: number
}

export function errorAt(at: Located, option: string, problem: string): ConfigError {
  return new ConfigError(at.file, at.line, option, problem)
}
