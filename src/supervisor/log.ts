// Log lines on stderr, one per event, as text (`titus: event key=value ...`) or JSON.
export type LogFormat = 'text' | 'json'

let format: LogFormat = 'text'

export function setLogFormat(f: LogFormat): void {
  format = f
}

export type LogFields = Record<string, string | number | boolean | undefined>

export function log(event: string, fields: LogFields = {}): void {
  if (format === 'json') {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), event, ...fields }) + '\n')
    return
  }
  let line = `titus: ${event}`
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue
    const s = String(v)
    line += ` ${k}=${/^[^\s"=]*$/.test(s) && s !== '' ? s : JSON.stringify(s)}`
  }
  process.stderr.write(line + '\n')
}
