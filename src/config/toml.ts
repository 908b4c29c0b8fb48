// TOML configuration: the same option names as keys, `[[vhost]]` tables for vhost blocks.
import { parse, TomlError, type TomlValue } from 'smol-toml'
import { errorAt, type Located } from './errors.js'
import { OPTION_BY_NAME } from './options.js'
import type { ConfigEntry } from './types.js'

// smol-toml reports no positions for values, so find each key's line by scanning the text: the first
// `key =` line within the same [[vhost]] table (0 = top level). Best effort: good for every config
// that keeps one key per line, which is all we promise to locate.
function keyLines(text: string): { keys: Map<string, number>; vhostHeaders: number[] } {
  const keys = new Map<string, number>()
  const vhostHeaders: number[] = []
  let table = 0
  let inMultiline: string | undefined
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.trim()
    if (inMultiline) {
      if (line.includes(inMultiline)) inMultiline = undefined
      return
    }
    if (/^\[\[\s*vhost\s*\]\]/.test(line)) {
      vhostHeaders.push(i + 1)
      table = vhostHeaders.length
      return
    }
    if (line.startsWith('[')) {
      // Some other table: only its name can be located (it is reported as an unknown option).
      const header = /^\[\s*([^\]]*?)\s*\]/.exec(line)?.[1]?.replace(/["']/g, '')
      if (header && !keys.has(`0\0${header}`)) keys.set(`0\0${header}`, i + 1)
      table = -1
      return
    }
    const m = /^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_.\- \t])+?)\s*=(.*)$/.exec(line)
    if (!m) return
    const key = m[1]!.replace(/\s*\.\s*/g, '.').replace(/["']/g, '')
    const id = `${table}\0${key}`
    if (!keys.has(id)) keys.set(id, i + 1)
    const opener = /("""|''')/.exec(m[2]!)
    if (opener && m[2]!.split(opener[1]!).length === 2) inMultiline = opener[1]
  })
  return { keys, vhostHeaders }
}

function tomlError(err: TomlError, file: string) {
  const first = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '')
  return errorAt({ file, line: err.line }, 'toml', first)
}

function scalar(v: TomlValue, name: string, at: Located): string {
  if (typeof v === 'string') return v
  if (typeof v === 'boolean') return v ? 'yes' : 'no'
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return String(v)
  throw errorAt(at, name, `must be a string, an integer or a boolean, got ${JSON.stringify(String(v))}`)
}

function isTable(v: TomlValue): v is { [k: string]: TomlValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date)
}

export function parseTomlConfig(text: string, file: string): ConfigEntry[] {
  let doc: Record<string, TomlValue>
  try {
    doc = parse(text)
  } catch (err) {
    if (err instanceof TomlError) throw tomlError(err, file)
    throw err
  }
  const { keys, vhostHeaders } = keyLines(text)
  const entries: ConfigEntry[] = []

  // Dotted keys (tlsv1.2 = true written without quotes) arrive as nested tables: flatten them back.
  const emit = (table: Record<string, TomlValue>, vhost: number | undefined, prefix: string) => {
    for (const [k, v] of Object.entries(table)) {
      const name = prefix + k
      const line =
        keys.get(`${vhost ?? 0}\0${name}`) ?? keys.get(`${vhost ?? 0}\0${name.split('.')[0]}`) ?? (vhost ? vhostHeaders[vhost - 1]! : 0)
      const at = { file, line }
      const push = (value: string) => entries.push(vhost === undefined ? { name, value, ...at } : { name, value, ...at, vhost })
      if (isTable(v)) {
        emit(v, vhost, `${name}.`)
      } else if (Array.isArray(v)) {
        const spec = OPTION_BY_NAME.get(name)
        const values = v.map(e => scalar(e, name, at))
        if (spec?.listSeparator) push(values.join(spec.listSeparator))
        else if (spec && !spec.repeatable) throw errorAt(at, name, 'takes a single value, not an array')
        else values.forEach(push)
      } else {
        push(scalar(v, name, at))
      }
    }
  }

  const { vhost: vhosts, ...globals } = doc
  emit(globals, undefined, '')
  if (vhosts !== undefined) {
    if (!Array.isArray(vhosts) || !vhosts.every(isTable)) {
      throw errorAt({ file, line: keys.get('0\0vhost') ?? 0 }, 'vhost', 'write vhost blocks as [[vhost]] tables')
    }
    vhosts.forEach((table, i) => {
      entries.push({ name: 'vhost', value: '', file, line: vhostHeaders[i] ?? 0, vhost: i + 1 })
      emit(table, i + 1, '')
    })
  }
  return entries
}
