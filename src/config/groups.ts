// Key exchange groups: `ecdhcurve` and `dhgroup` values → IANA NamedGroup code points and the
// finite-field parameters for TLS 1.2 DHE; including PKCS#3 DH parameter files (openssl dhparam).
import { Buffer } from 'node:buffer'
import { bitLength, checkDhParameters } from '../crypto/provider.js'
import type { DhParams } from './types.js'

const CURVES: ReadonlyMap<string, number> = new Map([
  ['x25519', 29],
  ['prime256v1', 23],
  ['secp256r1', 23],
  ['p-256', 23],
  ['secp384r1', 24],
  ['p-384', 24],
])
// Curves OpenSSL (and so titus 0.4) accepts that titus does not implement: a clear message, not "unknown".
const UNSUPPORTED_CURVES = /^(secp521r1|p-521|x448|secp224r1|p-224|secp256k1|brainpool.*|prime192v1|secp192r1|sect.*)$/

const FFDHE: ReadonlyMap<string, 2048 | 3072 | 4096> = new Map([
  ['ffdhe2048', 2048],
  ['ffdhe3072', 3072],
  ['ffdhe4096', 4096],
])
const RFC3526: ReadonlyMap<string, 2048 | 3072 | 4096> = new Map([
  ['14', 2048],
  ['15', 3072],
  ['16', 4096],
])
const FFDHE_CODE = { 2048: 256, 3072: 257, 4096: 258 } as const

const GROUP_NAMES: ReadonlyMap<number, string> = new Map([
  [29, 'x25519'],
  [23, 'secp256r1'],
  [24, 'secp384r1'],
  [256, 'ffdhe2048'],
  [257, 'ffdhe3072'],
  [258, 'ffdhe4096'],
])

export const MIN_DH_BITS = 2048
export const MAX_DH_BITS = 8192

export function groupName(code: number): string {
  return GROUP_NAMES.get(code) ?? `0x${code.toString(16).padStart(4, '0')}`
}

export function isFfdheGroup(code: number): boolean {
  return code >= 256 && code <= 258
}

export function ffdheCode(bits: 2048 | 3072 | 4096): number {
  return FFDHE_CODE[bits]
}

function splitList(text: string): string[] {
  return text.split(/[:,]/).map(s => s.trim())
}

// `ecdhcurve`: OpenSSL curve names separated by ':' or ','; throws Error with the problem.
export function parseCurveList(text: string): number[] {
  const codes: number[] = []
  for (const name of splitList(text)) {
    const lower = name.toLowerCase()
    const code = CURVES.get(lower)
    if (code !== undefined) {
      if (!codes.includes(code)) codes.push(code)
    } else if (UNSUPPORTED_CURVES.test(lower)) throw new Error(`curve ${name} is not supported (titus implements x25519, secp256r1, secp384r1)`)
    else if (FFDHE.has(lower)) throw new Error(`${name} is a finite-field group: put it in dhgroup`)
    else throw new Error(`unknown curve "${name}" (titus implements x25519, secp256r1 a.k.a. prime256v1, secp384r1)`)
  }
  return codes
}

export interface DhGroupList {
  params: DhParams // the first entry: TLS 1.2 DHE parameters
  ffdhe: number[] // the RFC 7919 entries as NamedGroup code points, for TLS 1.3 and RFC 7919 TLS 1.2
}

// `dhgroup` as a list of group names, or undefined if some element is not a group name (then the
// value is a file name). Throws Error for a list that is valid names but misplaced.
export function parseDhGroupNames(text: string): DhGroupList | undefined {
  const names = splitList(text)
  if (!names.every(n => FFDHE.has(n.toLowerCase()) || RFC3526.has(n))) return undefined
  const ffdhe: number[] = []
  let params: DhParams | undefined
  names.forEach((name, i) => {
    const rfc3526 = RFC3526.get(name)
    if (rfc3526 !== undefined) {
      // RFC 3526 groups cannot be negotiated (TLS 1.3 and RFC 7919 name only ffdhe groups), so only the
      // parameters sent to TLS 1.2 clients can be one: the first entry.
      if (i > 0) throw new Error(`group ${name} (RFC 3526) can only be the first entry: it is used only as TLS 1.2 DHE parameters`)
      params = { kind: 'rfc3526', bits: rfc3526 }
      return
    }
    const bits = FFDHE.get(name.toLowerCase())!
    params ??= { kind: 'ffdhe', bits }
    if (!ffdhe.includes(FFDHE_CODE[bits])) ffdhe.push(FFDHE_CODE[bits])
  })
  return { params: params!, ffdhe }
}

// Minimal DER: one tag-length-value at `pos`.
function readTlv(der: Uint8Array, pos: number): { tag: number; start: number; end: number } {
  if (pos + 2 > der.length) throw new Error('truncated DER')
  const tag = der[pos]!
  let length = der[pos + 1]!
  let start = pos + 2
  if (length & 0x80) {
    const octets = length & 0x7f
    if (octets === 0 || octets > 3 || start + octets > der.length) throw new Error('bad DER length')
    length = 0
    for (let i = 0; i < octets; i++) length = length * 256 + der[start + i]!
    start += octets
  }
  if (start + length > der.length) throw new Error('truncated DER')
  return { tag, start, end: start + length }
}

function readPositiveInteger(der: Uint8Array, pos: number): { value: Uint8Array; next: number } {
  const { tag, start, end } = readTlv(der, pos)
  if (tag !== 0x02 || end === start) throw new Error('expected an INTEGER')
  if (der[start]! & 0x80) throw new Error('negative INTEGER')
  let first = start
  while (first < end - 1 && der[first] === 0) first++
  return { value: der.slice(first, end), next: end }
}

// PKCS#3 "BEGIN DH PARAMETERS": SEQUENCE { prime INTEGER, base INTEGER, privateValueLength INTEGER OPTIONAL }.
export function parseDhParamsPem(pem: string, file: string): DhParams {
  if (pem.includes('-----BEGIN X9.42 DH PARAMETERS-----')) throw new Error('X9.42 DH parameters are not supported; generate PKCS#3 ones with openssl dhparam')
  const m = /-----BEGIN DH PARAMETERS-----([A-Za-z0-9+/=\s]*)-----END DH PARAMETERS-----/.exec(pem)
  if (!m) throw new Error('no "BEGIN DH PARAMETERS" block')
  const der = new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'))
  const seq = readTlv(der, 0)
  if (seq.tag !== 0x30) throw new Error('DH parameters are not a DER SEQUENCE')
  const p = readPositiveInteger(der, seq.start)
  const g = readPositiveInteger(der, p.next)
  const bits = bitLength(p.value)
  if (bits < MIN_DH_BITS) throw new Error(`the prime has ${bits} bits; at least ${MIN_DH_BITS} are required`)
  // The keyserver signs no larger ServerDHParams (src/keyserver/policy.ts).
  if (bits > MAX_DH_BITS) throw new Error(`the prime has ${bits} bits; at most ${MAX_DH_BITS} are supported`)
  // The rest of what the engine and the keyserver require of DH parameters (an odd prime, a generator of 2 to 2^32-1).
  checkDhParameters({ p: p.value, g: g.value })
  return { kind: 'pem', file, p: p.value, g: g.value }
}
