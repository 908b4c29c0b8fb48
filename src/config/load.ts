// Reading the configuration: the command-line entries, with every `config` and `config-directory`
// followed (recursively, in place) and the files parsed by their format.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { errorAt, type Located } from './errors.js'
import { absolutePath, resolveConfig, type ReadFile } from './resolve.js'
import { parseTitusConf } from './titus-conf.js'
import { parseTomlConfig } from './toml.js'
import type { ConfigEntry, TitusConfig } from './types.js'

// Names of the entries of a directory that are not directories themselves.
export type ListDir = (dir: string) => string[]

const defaultReadFile: ReadFile = p => readFileSync(p, 'utf8')
const defaultListDir: ListDir = dir => readdirSync(dir).filter(name => !statSync(join(dir, name)).isDirectory())

export function parseConfigFile(text: string, file: string): ConfigEntry[] {
  return file.endsWith('.toml') ? parseTomlConfig(text, file) : parseTitusConf(text, file)
}

// All entries in effect order: an included file's entries come right after the line including it.
// Vhost blocks are renumbered 1.. across files. File names are made absolute.
export function expandIncludes(cliEntries: readonly ConfigEntry[], readFile: ReadFile = defaultReadFile, listDir: ListDir = defaultListDir): ConfigEntry[] {
  const out: ConfigEntry[] = []
  let vhostCount = 0

  const include = (file: string, at: Located, option: string, stack: readonly string[]) => {
    if (stack.includes(file)) throw errorAt(at, option, `include loop: ${[...stack.slice(stack.indexOf(file)), file].join(' -> ')}`)
    let text: string
    try {
      text = readFile(file)
    } catch (err) {
      throw errorAt(at, option, `cannot read ${file}: ${(err as Error).message}`)
    }
    visit(parseConfigFile(text, file), [...stack, file])
  }

  const visit = (entries: readonly ConfigEntry[], stack: readonly string[]) => {
    const vhostNumbers = new Map<number, number>()
    for (const e of entries) {
      if (e.vhost === undefined) out.push(e)
      else {
        let n = vhostNumbers.get(e.vhost)
        if (n === undefined) vhostNumbers.set(e.vhost, (n = ++vhostCount))
        out.push({ ...e, vhost: n })
      }
      // An include inside a vhost block, or with no value, is reported by resolveConfig.
      if (e.vhost !== undefined || e.value === '') continue
      if (e.name === 'config') include(absolutePath(e, e.value), e, e.name, stack)
      if (e.name === 'config-directory') {
        const dir = absolutePath(e, e.value)
        let names: string[]
        try {
          names = listDir(dir)
        } catch (err) {
          throw errorAt(e, e.name, `cannot read directory ${dir}: ${(err as Error).message}`)
        }
        // As titus 0.4: lexical order, hidden files skipped.
        for (const name of names.filter(n => !n.startsWith('.')).sort()) include(join(dir, name), e, e.name, stack)
      }
    }
  }

  visit(cliEntries, [])
  return out
}

export function loadConfig(cliEntries: readonly ConfigEntry[], readFile: ReadFile = defaultReadFile, listDir: ListDir = defaultListDir): TitusConfig {
  return resolveConfig(expandIncludes(cliEntries, readFile, listDir), readFile)
}
