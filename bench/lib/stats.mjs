// Medians over rounds, ratios to the reference proxy, and the terminal table.

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

// rounds: [{ [proxy]: { metrics: { [key]: number } } }] → { [proxy]: { [key]: { median, n } } }
export function summarize(rounds, proxyNames, metrics) {
  const out = {}
  for (const name of proxyNames) {
    out[name] = {}
    for (const { key } of metrics) {
      const values = rounds.map((r) => r[name]?.metrics?.[key]).filter((x) => Number.isFinite(x))
      out[name][key] = { median: median(values), n: values.length }
    }
  }
  return out
}

// value(proxy) / value(reference), per metric; undefined where either side is missing.
export function ratios(summary, reference, metrics) {
  const out = {}
  for (const [name, byMetric] of Object.entries(summary)) {
    out[name] = {}
    for (const { key } of metrics) {
      const ref = summary[reference]?.[key]?.median
      const v = byMetric[key]?.median
      out[name][key] = ref && v !== undefined ? v / ref : undefined
    }
  }
  return out
}

function fmt(v) {
  if (v === undefined) return '-'
  if (v >= 100) return v.toFixed(0)
  if (v >= 10) return v.toFixed(1)
  return v.toPrecision(3)
}

export function table(summary, ratioTable, reference, metrics) {
  const names = Object.keys(summary)
  const cells = metrics.map(({ key }) =>
    names.map((n) => {
      const { median: m } = summary[n][key]
      const r = ratioTable[n][key]
      return m === undefined ? '-' : n === reference || r === undefined ? fmt(m) : `${fmt(m)} (${r.toFixed(2)}x)`
    }),
  )
  const labels = metrics.map((m) => `${m.label} [${m.better} is better]`)
  const firstWidth = Math.max(...labels.map((l) => l.length), 6)
  const widths = names.map((n, i) => Math.max(n.length, ...cells.map((row) => row[i].length)))
  const line = (first, cols) => [first.padEnd(firstWidth), ...cols.map((c, i) => c.padStart(widths[i]))].join('  ')
  return [line('metric', names), ...labels.map((l, j) => line(l, cells[j]))].join('\n')
}
