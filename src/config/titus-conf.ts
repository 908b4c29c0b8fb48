// titus.conf, titus 0.4's format: `name value` per line, `#` comment lines, blank lines, and `vhost`
// blocks whose options are on the following indented lines.
import { errorAt } from './errors.js'
import type { ConfigEntry } from './types.js'

const LEADING_BLANKS = /^[ \t]+/

export function parseTitusConf(text: string, file: string): ConfigEntry[] {
  const entries: ConfigEntry[] = []
  let vhostCount = 0
  // The block that indented lines belong to. As in titus 0.4, blank and comment lines do not end it;
  // only a line starting in column one does.
  let currentVhost: number | undefined
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1
    const raw = lines[i]!.replace(/[ \t\r]+$/, '')
    const indented = LEADING_BLANKS.test(raw)
    const content = raw.replace(LEADING_BLANKS, '')
    if (content === '' || content.startsWith('#')) continue
    const blank = content.search(/[ \t]/)
    const name = blank < 0 ? content : content.slice(0, blank)
    const value = blank < 0 ? '' : content.slice(blank).replace(LEADING_BLANKS, '')
    if (!indented) currentVhost = undefined
    if (name === 'vhost') {
      if (currentVhost !== undefined) throw errorAt({ file, line }, 'vhost', 'vhost blocks cannot nest; start the new block in column one')
      if (value !== '') throw errorAt({ file, line }, 'vhost', `takes no value (its options go on the following indented lines), got "${value}"`)
      currentVhost = ++vhostCount
      entries.push({ name, value, file, line, vhost: currentVhost })
      continue
    }
    entries.push(currentVhost === undefined ? { name, value, file, line } : { name, value, file, line, vhost: currentVhost })
  }
  return entries
}
