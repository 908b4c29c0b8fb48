// A self-signed ECDSA P-256 certificate for the demo, built with a minimal DER encoder so the demo needs
// no openssl binary. Only what a browser or curl needs: subject, validity, SAN localhost/127.0.0.1/::1.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'

function der(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts)
  const n = body.length
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  return Buffer.concat([Buffer.from([tag, ...len]), body])
}
const seq = (...p: Uint8Array[]) => der(0x30, ...p)
const oid = (dotted: string) => {
  const [a, b, ...rest] = dotted.split('.').map(Number)
  const bytes = [a! * 40 + b!]
  for (const v of rest) {
    const chunk = [v & 0x7f]
    for (let x = v >> 7; x > 0; x >>= 7) chunk.unshift((x & 0x7f) | 0x80)
    bytes.push(...chunk)
  }
  return der(0x06, Buffer.from(bytes))
}
const utf8 = (s: string) => der(0x0c, Buffer.from(s))
const time = (d: Date) => der(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'))

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2'
const COMMON_NAME = '2.5.4.3'
const SUBJECT_ALT_NAME = '2.5.29.17'
const BASIC_CONSTRAINTS = '2.5.29.19'

export function selfSignedCertificate(commonName: string): { certPem: string; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const name = seq(der(0x31, seq(oid(COMMON_NAME), utf8(commonName))))
  const now = Date.now()
  const serial = randomBytes(16)
  serial[0]! &= 0x7f // a positive INTEGER
  const altNames = seq(
    der(0x82, Buffer.from('localhost')), // dNSName
    der(0x87, Buffer.from([127, 0, 0, 1])), // iPAddress
    der(0x87, Buffer.from([...new Array<number>(15).fill(0), 1])), // ::1
  )
  const extensions = der(
    0xa3,
    seq(
      seq(oid(SUBJECT_ALT_NAME), der(0x04, altNames)),
      seq(oid(BASIC_CONSTRAINTS), der(0x01, Buffer.from([0xff])), der(0x04, seq())),
    ),
  )
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))), // version v3
    der(0x02, serial),
    seq(oid(ECDSA_WITH_SHA256)),
    name,
    seq(time(new Date(now - 3600_000)), time(new Date(now + 30 * 86400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    extensions,
  )
  const signature = sign('sha256', tbs, privateKey)
  const cert = seq(tbs, seq(oid(ECDSA_WITH_SHA256)), der(0x03, Buffer.from([0]), signature))
  const b64 = cert.toString('base64').replace(/.{64}/g, '$&\n').trimEnd()
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  }
}
