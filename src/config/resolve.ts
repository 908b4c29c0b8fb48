// From entries (files and argv, in order) to the effective configuration: every value checked,
// command-line values over file values, later over earlier, vhost values over global ones over defaults.
import { Buffer } from 'node:buffer'
import { readFileSync, statSync } from 'node:fs'
import { dirname, resolve as resolvePath } from 'node:path'
import { canonicalIp, formatListenAddress, parseListenAddress } from './address.js'
import { parseCipherString, parseCipherSuites } from './ciphers.js'
import { COMMAND_LINE, ConfigError, errorAt, type Located } from './errors.js'
import { parseCurveList, parseDhGroupNames, parseDhParamsPem, type DhGroupList } from './groups.js'
import { OPTION_BY_NAME, OPTIONS, type OptionSpec } from './options.js'
import type { ConfigEntry, ListenAddress, TitusConfig, Vhost } from './types.js'

export type ReadFile = (path: string) => string

type Value = string | number | boolean | null | number[] | string[] | ListenAddress | DhGroupList

interface Setting {
  at: Located
  value: Value
}

// Settings of one scope (the globals, or one vhost block), by option name, in order.
type Scope = Map<string, Setting[]>

const TRUE_WORDS = new Set(['yes', 'true', 'on'])
const FALSE_WORDS = new Set(['no', 'false', 'off'])
const DEFAULTS_AT: Located = { file: '<default>', line: 0 }

// titus 0.4 also took true/false/on/off and numbers.
function parseBool(text: string): boolean | undefined {
  const lower = text.toLowerCase()
  if (TRUE_WORDS.has(lower) || /^0*[1-9][0-9]*$/.test(text)) return true
  if (FALSE_WORDS.has(lower) || /^0+$/.test(text)) return false
  return undefined
}

// Relative names in a file are relative to that file's directory; on the command line, to the
// working directory. (titus 0.4 used the working directory for both.)
export function absolutePath(at: Located, name: string): string {
  return resolvePath(at.file === COMMAND_LINE || at.file === DEFAULTS_AT.file ? process.cwd() : dirname(at.file), name)
}

function checkAlpn(text: string): string[] {
  const protocols = text.split(',').map(p => p.trim())
  for (const p of protocols) {
    if (p === '' || Buffer.byteLength(p) > 255) throw new Error(`protocol names must be 1 to 255 bytes, got "${p}"`)
    if (protocols.indexOf(p) !== protocols.lastIndexOf(p)) throw new Error(`${p} is listed twice`)
  }
  return protocols
}

// chroot keeps its titus 0.4 meaning, an empty root-owned directory, but titus-launcher builds each sandbox its own
// empty root instead (docs/launcher.md): the directory is only checked, so a setting that was wrong before stays an error.
function checkRootDirectory(dir: string): void {
  let st
  try {
    st = statSync(dir)
  } catch (err) {
    throw new Error((err as NodeJS.ErrnoException).code === 'ENOENT' ? `${dir} does not exist` : `cannot use ${dir}: ${(err as Error).message}`)
  }
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`)
  if (st.uid !== 0) throw new Error(`${dir} is not owned by root`)
}

// One value of one option, checked and converted. Throws ConfigError located at `at`.
function parseValue(spec: OptionSpec, text: string, at: Located, readFile: ReadFile): Value {
  const fail = (problem: string) => errorAt(at, spec.name, problem)
  const guarded = <T>(f: () => T): T => {
    try {
      return f()
    } catch (err) {
      if (err instanceof ConfigError) throw err
      throw fail((err as Error).message)
    }
  }
  if (text === '') throw fail(`missing value (expected ${spec.arg})`)
  switch (spec.kind) {
    case 'int': {
      const min = spec.min ?? 0
      const max = spec.max ?? Number.MAX_SAFE_INTEGER
      if (!/^[0-9]+$/.test(text)) throw fail(`"${text}" is not a whole number`)
      const n = Number(text)
      if (n < min || n > max) throw fail(`${text} is out of range (${min}-${max})`)
      return n
    }
    case 'bool': {
      const b = parseBool(text)
      if (b === undefined) throw fail(`"${text}" is not yes or no`)
      const refusal = spec.refused?.[b ? 'yes' : 'no']
      if (refusal) throw fail(refusal)
      return b
    }
    case 'enum': {
      const lower = text.toLowerCase()
      if (spec.values!.includes(lower)) return lower
      // titus 0.4 read `transparent` as a boolean unless it said backend-only.
      const b = spec.values!.includes('yes') ? parseBool(text) : undefined
      if (b !== undefined) return b ? 'yes' : 'no'
      throw fail(`"${text}" is not one of ${spec.values!.join(', ')}`)
    }
    case 'address': {
      const a = parseListenAddress(text)
      if (typeof a === 'string') throw fail(a)
      return a
    }
    case 'ip': {
      const ip = canonicalIp(text)
      if (!ip) throw fail(`"${text}" is not an IP address (host names are not accepted)`)
      return ip
    }
    case 'path': {
      const path = absolutePath(at, text)
      if (spec.name === 'chroot') guarded(() => checkRootDirectory(path))
      return path
    }
    case 'string':
      break
  }
  switch (spec.name) {
    case 'ciphers':
      return guarded(() => parseCipherString(text))
    case 'ciphersuites':
      return guarded(() => parseCipherSuites(text))
    case 'ecdhcurve':
      return guarded(() => parseCurveList(text))
    case 'alpn':
      return guarded(() => checkAlpn(text))
    case 'sni-name':
      // titus 0.4: a literal "" matches clients that send no server name.
      if (text === '""') return null
      if (/[\s"]/.test(text)) throw fail(`"${text}" is not a host name`)
      return text
    case 'dhgroup':
      return guarded(() => {
        const names = parseDhGroupNames(text)
        if (names) return names
        const file = absolutePath(at, text)
        let pem: string
        try {
          pem = readFile(file)
        } catch (err) {
          throw new Error(
            `"${text}" is neither a group (ffdhe2048, ffdhe3072, ffdhe4096, 14, 15, 16) nor a readable DH parameters file: ${(err as Error).message}`,
          )
        }
        try {
          return { params: parseDhParamsPem(pem, file), ffdhe: [] }
        } catch (err) {
          throw new Error(`${file}: ${(err as Error).message}`)
        }
      })
  }
  return text
}

// Where each of `options` in effect was set, by name; options left at their default are absent.
function locationsOf(options: readonly OptionSpec[], setting: (name: string) => Setting | undefined): Record<string, Located> {
  const locations: Record<string, Located> = {}
  for (const { name } of options) {
    const s = setting(name)
    if (s && s.at !== DEFAULTS_AT) locations[name] = s.at
  }
  return locations
}

function push(scope: Scope, name: string, setting: Setting) {
  const list = scope.get(name)
  if (list) list.push(setting)
  else scope.set(name, [setting])
}

const LISTENERS = ['port', 'listen']
const GLOBAL_OPTIONS = OPTIONS.filter(o => o.scope === 'global')
const VHOST_OPTIONS = OPTIONS.filter(o => o.scope !== 'global')

export function resolveConfig(entries: readonly ConfigEntry[], readFile: ReadFile = p => readFileSync(p, 'utf8')): TitusConfig {
  const fileGlobals: Scope = new Map()
  const cliGlobals: Scope = new Map()
  const blocks = new Map<number, { at: Located; scope: Scope }>()

  for (const e of entries) {
    const at = { file: e.file, line: e.line }
    if (e.name === 'vhost') {
      if (e.vhost === undefined) throw errorAt(at, 'vhost', 'vhost blocks can only be written in configuration files')
      if (!blocks.has(e.vhost)) blocks.set(e.vhost, { at, scope: new Map() })
      continue
    }
    const spec = OPTION_BY_NAME.get(e.name)
    if (!spec) throw errorAt(at, e.name, 'unknown option')
    if (e.vhost !== undefined && spec.scope === 'global') throw errorAt(at, e.name, 'is a global option and cannot be set inside a vhost block')
    if (e.vhost === undefined && spec.scope === 'vhost-only') {
      throw errorAt(at, e.name, `only allowed inside a vhost block${e.file === COMMAND_LINE ? ' (vhost blocks can only be written in configuration files)' : ''}`)
    }
    // Includes were followed by loadConfig; here they only need to be well-formed.
    const value = parseValue(spec, e.value, at, readFile)
    if (spec.name === 'config' || spec.name === 'config-directory') continue
    if (e.vhost === undefined) {
      push(e.file === COMMAND_LINE ? cliGlobals : fileGlobals, e.name, { at, value })
    } else {
      let block = blocks.get(e.vhost)
      if (!block) blocks.set(e.vhost, (block = { at, scope: new Map() }))
      push(block.scope, e.name, { at, value })
    }
  }

  // The command line overrides files option by option; port and listen together name the listeners.
  const globals: Scope = new Map(fileGlobals)
  const cliListens = LISTENERS.some(n => cliGlobals.has(n))
  if (cliListens) LISTENERS.forEach(n => globals.delete(n))
  for (const [name, settings] of cliGlobals) globals.set(name, settings)

  const defaults: Scope = new Map(
    OPTIONS.filter(o => o.default !== undefined).map(o => [o.name, [{ at: DEFAULTS_AT, value: parseValue(o, o.default!, DEFAULTS_AT, readFile) }]]),
  )
  // Non-repeatable options: the last setting wins, as in titus 0.4.
  const last = (name: string, ...scopes: Scope[]): Setting | undefined => {
    for (const scope of scopes) {
      const list = scope.get(name)
      if (list) return list[list.length - 1]
    }
    return undefined
  }
  const global = <T extends Value>(name: string) => last(name, globals, defaults)?.value as T
  const optionalGlobal = <T extends Value>(name: string) => last(name, globals)?.value as T | undefined

  const listen: ListenAddress[] = []
  const listenSources: Located[] = []
  const portSetting = last('port', globals)
  const listenSettings = [...(portSetting ? [{ at: portSetting.at, value: { host: '::', port: portSetting.value as number } }] : []), ...(globals.get('listen') ?? [])]
  for (const { at, value } of listenSettings) {
    const address = value as ListenAddress
    const seen = listen.findIndex(l => l.host === address.host && l.port === address.port)
    if (seen >= 0) {
      const first = listenSources[seen]!
      throw errorAt(at, 'listen', `${formatListenAddress(address)} is already configured at ${first.file}:${first.line}`)
    }
    listen.push(address)
    listenSources.push(at)
  }

  const transparent = global<'yes' | 'no' | 'backend-only'>('transparent')
  const vhostScopes: { id: number; at: Located | undefined; scope: Scope }[] =
    blocks.size === 0 ? [{ id: 0, at: undefined, scope: new Map() }] : [...blocks.values()].map((b, i) => ({ id: i + 1, ...b }))

  const vhosts = vhostScopes.map(({ id, at, scope }): Vhost => {
    const where = at ?? { file: '<configuration>', line: 0 }
    const setting = (name: string) => last(name, scope, globals, defaults)
    const get = <T extends Value>(name: string) => setting(name)?.value as T
    const required = <T extends Value>(name: string, what: string): T => {
      const s = setting(name)
      if (!s) throw errorAt(where, name, `no ${what} given${at ? ' for this vhost (set it in the block or globally)' : ''}`)
      return s.value as T
    }
    let backend = ''
    let backendPort = 0
    if (transparent === 'yes') {
      // The backend is each connection's original destination (titus 0.4 refused both options here).
      const given = setting('backend') ?? setting('backend-port')
      if (given) throw errorAt(given.at, given === setting('backend') ? 'backend' : 'backend-port', 'cannot be used with transparent yes')
    } else {
      backend = required<string>('backend', 'backend host')
      backendPort = required<number>('backend-port', 'backend port')
    }
    const tls12 = get<boolean>('tlsv1.2')
    const tls13 = get<boolean>('tlsv1.3')
    if (!tls12 && !tls13) throw errorAt(at ?? setting('tlsv1.3')!.at, 'tlsv1.3', 'TLS 1.2 and TLS 1.3 are both disabled: nothing left to speak')
    const dh = get<DhGroupList>('dhgroup')
    const sniNames = (scope.get('sni-name') ?? []).map(s => s.value as string | null)
    const localAddress = scope.get('local-address') && get<string>('local-address')
    const localPort = scope.get('local-port') && get<number>('local-port')
    return {
      id,
      source: at ? `${at.file}:${at.line}` : 'implicit',
      locations: locationsOf(VHOST_OPTIONS, setting),
      match: {
        ...(localAddress !== undefined && { localAddress }),
        ...(localPort !== undefined && { localPort }),
        ...(sniNames.length > 0 && { sniNames }),
      },
      key: required<string>('key', 'private key file (key)'),
      cert: required<string>('cert', 'certificate file (cert)'),
      backend,
      backendPort,
      tls12,
      tls13,
      extendedMasterSecret: get<boolean>('extended-master-secret'),
      cipherSuites12: get<number[]>('ciphers'),
      cipherSuites13: get<number[]>('ciphersuites'),
      groups: [...get<number[]>('ecdhcurve'), ...dh.ffdhe],
      dhParams: dh.params,
      honorClientCipherOrder: get<boolean>('honor-client-cipher-order'),
      ...(setting('alpn') && { alpn: get<string[]>('alpn') }),
    }
  })

  const optional = <K extends string, T extends Value>(key: K, name: string) => {
    const v = optionalGlobal<T>(name)
    return (v === undefined ? {} : { [key]: v }) as { [P in K]?: T }
  }
  return {
    listen,
    daemon: global<boolean>('daemon'),
    ...optional<'pidFile', string>('pidFile', 'pid-file'),
    transparent,
    minSpareChildren: global<number>('min-spare-children'),
    maxChildren: global<number>('max-children'),
    maxHandshakeTime: global<number>('max-handshake-time'),
    shutdownTimeout: global<number>('shutdown-timeout'),
    ...optional<'networkUser', string>('networkUser', 'network-user'),
    ...optional<'networkGroup', string>('networkGroup', 'network-group'),
    ...optional<'keyserverUser', string>('keyserverUser', 'keyserver-user'),
    ...optional<'keyserverGroup', string>('keyserverGroup', 'keyserver-group'),
    ...optional<'chroot', string>('chroot', 'chroot'),
    isolation: global<TitusConfig['isolation']>('isolation'),
    logFormat: global<TitusConfig['logFormat']>('log-format'),
    vhosts,
    locations: locationsOf(GLOBAL_OPTIONS, name => last(name, globals)),
  }
}
