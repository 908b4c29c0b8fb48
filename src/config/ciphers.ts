// OpenSSL cipher strings (ciphers(1ssl)) evaluated over the TLS 1.2 suites titus implements, with
// OpenSSL's semantics, so a titus 0.4 `ciphers` line selects exactly what OpenSSL would, minus the
// suites we do not implement (static RSA, CBC, RC4, ...: a string naming them is fine, they are
// simply never selected).
//
// Filtering commutes with OpenSSL's algorithm: every rule selects ciphers by their own attributes
// and moves the selected ones as a block keeping their relative order, so the order among our suites
// does not depend on the others. That lets us run the algorithm on our suites alone.

type KeyExchange = 'ECDHE' | 'DHE'
type Auth = 'RSA' | 'ECDSA'
type Encryption = 'AES128GCM' | 'AES256GCM' | 'CHACHA20'

interface Suite12 {
  code: number
  name: string // OpenSSL's
  iana: string
  kx: KeyExchange
  auth: Auth
  enc: Encryption
  bits: number
}

function suite(code: number, kx: KeyExchange, auth: Auth, enc: Encryption): Suite12 {
  const cipherName = { AES128GCM: 'AES128-GCM-SHA256', AES256GCM: 'AES256-GCM-SHA384', CHACHA20: 'CHACHA20-POLY1305' }[enc]
  const ianaCipher = { AES128GCM: 'AES_128_GCM_SHA256', AES256GCM: 'AES_256_GCM_SHA384', CHACHA20: 'CHACHA20_POLY1305_SHA256' }[enc]
  return {
    code,
    name: `${kx}-${auth}-${cipherName}`,
    iana: `TLS_${kx}_${auth}_WITH_${ianaCipher}`,
    kx,
    auth,
    enc,
    bits: enc === 'AES128GCM' ? 128 : 256,
  }
}

// In OpenSSL's built-in preference order (what `openssl ciphers -V ALL` lists, filtered to these).
const SUITES_12: readonly Suite12[] = [
  suite(0xc02c, 'ECDHE', 'ECDSA', 'AES256GCM'),
  suite(0xc030, 'ECDHE', 'RSA', 'AES256GCM'),
  suite(0x009f, 'DHE', 'RSA', 'AES256GCM'),
  suite(0xcca9, 'ECDHE', 'ECDSA', 'CHACHA20'),
  suite(0xcca8, 'ECDHE', 'RSA', 'CHACHA20'),
  suite(0xccaa, 'DHE', 'RSA', 'CHACHA20'),
  suite(0xc02b, 'ECDHE', 'ECDSA', 'AES128GCM'),
  suite(0xc02f, 'ECDHE', 'RSA', 'AES128GCM'),
  suite(0x009e, 'DHE', 'RSA', 'AES128GCM'),
]

const SUITES_13: ReadonlyMap<string, number> = new Map([
  ['TLS_AES_128_GCM_SHA256', 0x1301],
  ['TLS_AES_256_GCM_SHA384', 0x1302],
  ['TLS_CHACHA20_POLY1305_SHA256', 0x1303],
])

type Selector = (s: Suite12) => boolean
const isAes: Selector = s => s.enc !== 'CHACHA20'
const isDhe: Selector = s => s.kx === 'DHE'
const isEcdhe: Selector = s => s.kx === 'ECDHE'
const isEcdsa: Selector = s => s.auth === 'ECDSA'

// OpenSSL's aliases that select at least one of our suites (measured against OpenSSL 3.0). Every other
// alias (MEDIUM, LOW, EXPORT, eNULL, aNULL, NULL, RC4, 3DES, DES, MD5, SHA1, SHA256, SHA384, kRSA, RSA,
// PSK, CAMELLIA, ARIA, ...) selects none of them and behaves like an unknown word: it is ignored.
const ALIASES: ReadonlyMap<string, Selector> = new Map<string, Selector>([
  ['ALL', () => true],
  ['HIGH', () => true],
  ['TLSv1.2', () => true],
  ['FIPS', isAes],
  ['AES', isAes],
  ['AESGCM', isAes],
  ['AES128', s => s.enc === 'AES128GCM'],
  ['AES256', s => s.enc === 'AES256GCM'],
  ['CHACHA20', s => s.enc === 'CHACHA20'],
  ['aRSA', s => s.auth === 'RSA'],
  ['aECDSA', isEcdsa],
  ['ECDSA', isEcdsa],
  ...['kEDH', 'kDHE', 'DH', 'DHE', 'EDH'].map(n => [n, isDhe] as [string, Selector]),
  ...['kEECDH', 'kECDHE', 'ECDH', 'EECDH', 'ECDHE'].map(n => [n, isEcdhe] as [string, Selector]),
  // OpenSSL 3.0 knows only its own names; newer versions also take the IANA names, and so do we.
  ...SUITES_12.flatMap(s => [[s.name, (t: Suite12) => t === s] as [string, Selector], [s.iana, (t: Suite12) => t === s] as [string, Selector]]),
])

const NAME_BY_CODE: ReadonlyMap<number, string> = new Map([
  ...SUITES_12.map(s => [s.code, s.name] as [number, string]),
  ...[...SUITES_13].map(([name, code]) => [code, name] as [number, string]),
])

// OpenSSL name of a TLS 1.2 suite, IANA name of a TLS 1.3 one.
export function cipherSuiteName(code: number): string {
  return NAME_BY_CODE.get(code) ?? `0x${code.toString(16).padStart(4, '0')}`
}

export class CipherStringError extends Error {}

const isSeparator = (c: string) => c === ':' || c === ',' || c === ' ' || c === ';'
const isWordChar = (c: string) => /^[A-Za-z0-9\-_.=]$/.test(c)

type Rule = 'add' | 'move-to-end' | 'remove' | 'kill' | 'command'

// OpenSSL's list with its "active" flags: inactive entries keep their place and order for later adds.
class CipherList {
  private entries = SUITES_12.map(suite => ({ suite, active: false }))

  apply(rule: Exclude<Rule, 'command'>, select: Selector) {
    if (rule === 'kill') {
      this.entries = this.entries.filter(e => !select(e.suite))
      return
    }
    const wantActive = rule !== 'add'
    const picked = this.entries.filter(e => select(e.suite) && e.active === wantActive)
    const rest = this.entries.filter(e => !picked.includes(e))
    if (rule === 'remove') {
      // Most recently removed first: they get the best places if added again.
      picked.forEach(e => (e.active = false))
      this.entries = [...picked, ...rest]
    } else {
      picked.forEach(e => (e.active = true))
      this.entries = [...rest, ...picked]
    }
  }

  sortByStrength() {
    const strengths = [...new Set(this.entries.map(e => e.suite.bits))].sort((a, b) => b - a)
    for (const bits of strengths) this.apply('move-to-end', s => s.bits === bits)
  }

  selected(): number[] {
    return this.entries.filter(e => e.active).map(e => e.suite.code)
  }
}

// Runs OpenSSL's rule-string scanner: an optional prefix (- + ! @) then words joined by '+' (all must
// match), elements separated by : , ; or space. Unknown words make their element a no-op, as in OpenSSL.
function applyRules(text: string, list: CipherList) {
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    const rule: Rule = c === '-' ? 'remove' : c === '+' ? 'move-to-end' : c === '!' ? 'kill' : c === '@' ? 'command' : 'add'
    if (rule !== 'add') i++
    else if (isSeparator(c)) {
      i++
      continue
    }
    const selectors: Selector[] = []
    let known = true
    let word = ''
    for (;;) {
      const start = i
      while (i < text.length && isWordChar(text[i]!)) i++
      word = text.slice(start, i)
      if (word === '') {
        const found = i < text.length ? `"${text[i]}"` : 'the end'
        throw new CipherStringError(`expected a cipher name or alias at position ${i + 1}, found ${found}`)
      }
      if (rule === 'command') break
      const combined = text[i] === '+'
      if (combined) i++
      const selector = ALIASES.get(word)
      if (!selector) {
        known = false
        break
      }
      selectors.push(selector)
      if (!combined) break
    }
    if (rule === 'command') {
      const level = /^SECLEVEL=([0-5])$/.exec(word)
      if (word === 'STRENGTH') list.sortByStrength()
      else if (!level) throw new CipherStringError(`unknown command @${word} (there are @STRENGTH and @SECLEVEL=0..5)`)
      // @SECLEVEL only ever removes suites weaker than ours: accepted and ignored.
    } else if (known) {
      list.apply(rule, s => selectors.every(select => select(s)))
      continue
    }
    while (i < text.length && !isSeparator(text[i]!)) i++
  }
}

// An OpenSSL cipher string → the TLS 1.2 suites it selects that titus implements, in preference order.
export function parseCipherString(text: string): number[] {
  const list = new CipherList()
  let rest = text
  // As in OpenSSL, DEFAULT is special only at the very start; it selects all of our suites.
  if (rest.startsWith('DEFAULT')) {
    list.apply('add', () => true)
    rest = rest.slice('DEFAULT'.length).replace(/^:/, '')
  }
  applyRules(rest, list)
  const selected = list.selected()
  if (selected.length === 0) {
    throw new CipherStringError(
      'selects no supported TLS 1.2 cipher suite (titus implements ECDHE-ECDSA, ECDHE-RSA and DHE-RSA with AES-GCM or ChaCha20-Poly1305)',
    )
  }
  return selected
}

// TLS 1.3 suite names separated by ':', in preference order. As in OpenSSL, unknown names are skipped
// (so are TLS_AES_128_CCM_SHA256 and TLS_AES_128_CCM_8_SHA256, which titus does not implement).
export function parseCipherSuites(text: string): number[] {
  const codes = text.split(':').flatMap(name => SUITES_13.get(name) ?? [])
  if (codes.length === 0) {
    throw new CipherStringError(`selects no supported TLS 1.3 cipher suite (there are ${[...SUITES_13.keys()].join(', ')})`)
  }
  return [...new Set(codes)]
}
