// Cipher strings against the real openssl: same suites, same order, after dropping what titus does not implement.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { CipherStringError, cipherSuiteName, parseCipherString, parseCipherSuites } from '../src/config/index.js'

const IMPLEMENTED_12 = new Set([0xc02b, 0xc02c, 0xc02f, 0xc030, 0xcca9, 0xcca8, 0x009e, 0x009f, 0xccaa])

// `openssl ciphers -V` lines look like "0xC0,0x2F - ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 ...".
function openssl(args: string[]): number[] | 'error' {
  let out: string
  try {
    out = execFileSync('openssl', ['ciphers', '-V', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  } catch {
    return 'error'
  }
  return [...out.matchAll(/0x([0-9A-F]{2}),0x([0-9A-F]{2})/g)].map(m => parseInt(m[1]! + m[2]!, 16))
}

function ours(parse: () => number[]): number[] | 'error' {
  try {
    return parse()
  } catch (err) {
    if (err instanceof CipherStringError) return 'error'
    throw err
  }
}

const TITUS_04_DEFAULT =
  'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:DHE-DSS-AES128-GCM-SHA256:kEDH+AESGCM:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES256-SHA:DHE-RSA-AES128-SHA256:DHE-RSA-AES128-SHA:DHE-DSS-AES128-SHA256:DHE-RSA-AES256-SHA256:DHE-DSS-AES256-SHA:DHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:AES:CAMELLIA:DES-CBC3-SHA:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!aECDH:!EDH-DSS-DES-CBC3-SHA:!EDH-RSA-DES-CBC3-SHA:!KRB5-DES-CBC3-SHA'
const TITUS_04_EXAMPLE =
  'ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES256-SHA:DHE-RSA-AES256-SHA256:DHE-RSA-AES256-SHA:DHE-RSA-CAMELLIA256-SHA:AES256-GCM-SHA384:AES256-SHA256:AES256-SHA:CAMELLIA256-SHA:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:DHE-RSA-AES128-SHA256:DHE-RSA-AES128-SHA:DHE-RSA-CAMELLIA128-SHA:AES128-GCM-SHA256:AES128-SHA256:AES128-SHA:CAMELLIA128-SHA:ECDHE-RSA-RC4-SHA:RC4-SHA'

// Strings that exercise every rule: aliases, +combinations, - ! + prefixes, @STRENGTH, DEFAULT, separators.
const STRINGS = [
  TITUS_04_DEFAULT,
  TITUS_04_EXAMPLE,
  'ALL',
  'DEFAULT',
  'DEFAULT:!DHE',
  'HIGH:!aNULL:!MD5:@SECLEVEL=2',
  'ECDHE:DHE:@STRENGTH',
  'EECDH+AESGCM:EDH+AESGCM',
  'kEDH+AESGCM:ECDHE',
  'AES256+ECDHE+aRSA:CHACHA20',
  'ALL:+AES128',
  'AES!CHACHA20',
  'ALL:-ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256',
  'ALL:!AES128:AES128',
  'AES128:-ALL:CHACHA20:ALL',
  'DHE:ECDHE:-DHE:+AES256:AES128:DHE',
  'CHACHA20:AES:@STRENGTH:DHE:@STRENGTH',
  'AES128 CHACHA20,AES256;DHE',
  'ECDH:!ECDSA:ECDSA',
  'ECDHE-ECDSA-AES128-GCM-SHA256+aRSA:DHE',
  'foo+AES:CHACHA20',
  'AES-CHACHA20:AES',
  'FIPS:aECDSA',
  'TLSv1.2+kECDHE:kDHE',
]

t.test('cipher strings select what openssl selects, in the same order', async t => {
  for (const s of STRINGS) {
    const expected = openssl([s])
    t.not(expected, 'error', `openssl accepts ${s}`)
    if (expected === 'error') continue
    t.same(parseCipherString(s), expected.filter(c => IMPLEMENTED_12.has(c)), s)
  }
})

t.test('strings openssl rejects are rejected', async t => {
  // A leading '-' would be taken as an openssl option, hence the harmless first element.
  for (const s of ['AES:#', 'AES:@FOO', 'AES:@SECLEVEL=9', 'AES+', '+AES', 'x:-ALL', 'aes']) {
    t.equal(openssl([s]), 'error', `openssl rejects ${s}`)
    t.equal(ours(() => parseCipherString(s)), 'error', s)
  }
})

t.test('strings selecting only suites titus does not implement are an error', async t => {
  for (const s of ['ECDHE-RSA-AES128-SHA', 'kRSA', 'RSA', 'SHA256', 'AESGCM+kRSA']) {
    const o = openssl([s])
    t.ok(o !== 'error' && o.length > 0, `openssl selects something for ${s}`)
    t.throws(() => parseCipherString(s), /selects no supported TLS 1.2 cipher suite/, s)
  }
  t.throws(() => parseCipherString('AES:#'), /position 5, found "#"/)
  t.throws(() => parseCipherString('AES:@FOO'), /unknown command @FOO/)
})

t.test('IANA names are accepted too (OpenSSL 3.2+ does the same)', async t => {
  t.same(parseCipherString('TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:TLS_DHE_RSA_WITH_AES_128_GCM_SHA256'), [0xcca8, 0x009e])
})

t.test("titus 0.4's default string: the AEAD suites it names, strongest key exchange first", async t => {
  t.same(parseCipherString(TITUS_04_DEFAULT).map(cipherSuiteName), [
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'DHE-RSA-AES128-GCM-SHA256',
    'DHE-RSA-AES256-GCM-SHA384',
  ])
})

t.test('TLS 1.3 suites: as openssl -ciphersuites', async t => {
  const IMPLEMENTED_13 = new Set([0x1301, 0x1302, 0x1303])
  for (const s of ['TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384:FOO', 'TLS_AES_128_CCM_SHA256:TLS_AES_128_GCM_SHA256']) {
    const o = openssl(['-ciphersuites', s, 'ECDHE-RSA-AES128-GCM-SHA256'])
    t.not(o, 'error')
    if (o !== 'error') t.same(parseCipherSuites(s), o.filter(c => IMPLEMENTED_13.has(c)), s)
  }
  for (const s of ['FOO', 'TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384', 'tls_aes_128_gcm_sha256']) {
    t.equal(openssl(['-ciphersuites', s, 'ECDHE-RSA-AES128-GCM-SHA256']), 'error', `openssl rejects ${s}`)
    t.equal(ours(() => parseCipherSuites(s)), 'error', s)
  }
  t.throws(() => parseCipherSuites('TLS_AES_128_CCM_SHA256'), /no supported TLS 1.3 cipher suite/)
})
