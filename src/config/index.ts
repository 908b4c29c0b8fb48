// titus configuration: titus.conf (titus 0.4 syntax) and TOML files, command-line entries, validation,
// defaults and vhost inheritance, OpenSSL cipher strings, vhost selection, and the effective-config dump.
export { COMMAND_LINE, ConfigError, EXIT_CONFIG, EXIT_USAGE } from './errors.js'
export type { ConfigEntry, DhParams, ListenAddress, TitusConfig, Vhost, VhostMatch } from './types.js'
export { parseTitusConf } from './titus-conf.js'
export { parseTomlConfig } from './toml.js'
export { expandIncludes, loadConfig, parseConfigFile, type ListDir } from './load.js'
export { resolveConfig, type ReadFile } from './resolve.js'
export { describeConfig } from './describe.js'
export { matchVhost, selectVhost, vhostMatches, type ConnectionFacts } from './match.js'
export { CipherStringError, cipherSuiteName, parseCipherString, parseCipherSuites } from './ciphers.js'
export { groupName } from './groups.js'
export { OPTIONS, OPTION_BY_NAME, type OptionSpec } from './options.js'
