// The crypto provider's ChaCha20-Poly1305 on Node (node:crypto) and on Bun, whose node:crypto lacks it (the
// provider falls back to @noble/ciphers there): the RFC 8439 §2.8.2 AEAD vector on both, and records sealed on
// one runtime open on the other. Bun runs the provider's TypeScript source directly.
import t from 'tap'
import { createCipheriv, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { aeadAvailable, createAead, type Aead } from '../src/crypto/provider.js'
import { run } from './support/process.js'

const BUN = fileURLToPath(new URL('../node_modules/.bin/bun', import.meta.url))
const PROVIDER = fileURLToPath(new URL('../src/crypto/provider.ts', import.meta.url))

// RFC 8439 §2.8.2: key 80..9f, nonce = constant 07000000 || IV 4041424344454647.
const VECTOR = {
  key: Buffer.from(Array.from({ length: 32 }, (_, i) => 0x80 + i)),
  nonce: Buffer.from('070000004041424344454647', 'hex'),
  aad: Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex'),
  plaintext: Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."),
  sealed: Buffer.from(
    'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36' +
      '92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116' +
      '1ae10b594f09e26a7e902ecbd0600691', // the tag
    'hex',
  ),
}

interface Operation {
  op: 'seal' | 'open'
  key: string
  nonce: string
  aad: string
  // seal: the plaintext's parts; open: one element, ciphertext || tag. All hex.
  data: string[]
}

/** Runs the operations through a provider in this process; results are hex, or null where open failed. */
function apply(operations: readonly Operation[], create: (key: Uint8Array) => Aead): (string | null)[] {
  return operations.map(({ op, key, nonce, aad, data }) => {
    const aead = create(Buffer.from(key, 'hex'))
    const parts = data.map(part => Buffer.from(part, 'hex'))
    const out = op === 'seal' ? aead.seal(Buffer.from(nonce, 'hex'), Buffer.from(aad, 'hex'), parts) : aead.open(Buffer.from(nonce, 'hex'), Buffer.from(aad, 'hex'), parts[0])
    return out ? out.toString('hex') : null
  })
}

// The same operations on Bun: the script imports the provider's source and reads the operations on stdin.
const dir = mkdtempSync(join(tmpdir(), 'titus-crypto-provider-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const script = join(dir, 'provider-on-bun.ts')
writeFileSync(
  script,
  `import { createCipheriv } from 'node:crypto'
import { aeadAvailable, createAead } from ${JSON.stringify(PROVIDER)}
let native = true
try { createCipheriv('chacha20-poly1305', Buffer.alloc(32), Buffer.alloc(12), { authTagLength: 16 }) } catch { native = false }
const operations = JSON.parse(await Bun.stdin.text())
const results = (${apply.toString()})(operations, key => createAead('chacha20-poly1305', key))
console.log(JSON.stringify({ native, available: aeadAvailable('chacha20-poly1305'), results }))
`,
)

async function onBun(operations: readonly Operation[]): Promise<{ native: boolean; available: boolean; results: (string | null)[] }> {
  const result = await run(t, BUN, [script], { input: JSON.stringify(operations), timeoutMs: 30000 })
  if (result.code !== 0 || result.timedOut) throw new Error(`bun exited with ${result.code}${result.timedOut ? ' (timed out)' : ''}: ${result.stderr}`)
  return JSON.parse(result.stdout.toString())
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const flipped = (b: Buffer, index: number) => {
  const copy = Buffer.from(b)
  copy[index] ^= 0x01
  return copy
}
const vectorKey = { key: hex(VECTOR.key), nonce: hex(VECTOR.nonce) }
// The vector sealed in two parts; then opened intact, and with a bit flipped in the tag, the ciphertext and the AAD.
const VECTOR_OPERATIONS: Operation[] = [
  { op: 'seal', ...vectorKey, aad: hex(VECTOR.aad), data: [hex(VECTOR.plaintext.subarray(0, 50)), hex(VECTOR.plaintext.subarray(50))] },
  { op: 'open', ...vectorKey, aad: hex(VECTOR.aad), data: [hex(VECTOR.sealed)] },
  { op: 'open', ...vectorKey, aad: hex(VECTOR.aad), data: [hex(flipped(VECTOR.sealed, VECTOR.sealed.length - 1))] },
  { op: 'open', ...vectorKey, aad: hex(VECTOR.aad), data: [hex(flipped(VECTOR.sealed, 0))] },
  { op: 'open', ...vectorKey, aad: hex(flipped(VECTOR.aad, 3)), data: [hex(VECTOR.sealed)] },
  { op: 'open', ...vectorKey, aad: hex(VECTOR.aad), data: [hex(VECTOR.sealed.subarray(0, 15))] },
]
const VECTOR_EXPECTED = [hex(VECTOR.sealed), hex(VECTOR.plaintext), null, null, null, null]

t.test('RFC 8439 §2.8.2 on Node, through node:crypto', async t => {
  t.ok(aeadAvailable('chacha20-poly1305'))
  t.doesNotThrow(() => createCipheriv('chacha20-poly1305', VECTOR.key, VECTOR.nonce, { authTagLength: 16 }), "Node's own ChaCha20-Poly1305 is in use")
  t.same(apply(VECTOR_OPERATIONS, key => createAead('chacha20-poly1305', key)), VECTOR_EXPECTED)
})

t.test('RFC 8439 §2.8.2 on Bun, through @noble/ciphers', async t => {
  const bun = await onBun(VECTOR_OPERATIONS)
  t.equal(bun.native, false, "Bun's node:crypto lacks chacha20-poly1305 (else this no longer tests the @noble path)")
  t.equal(bun.available, true, "aeadAvailable('chacha20-poly1305') on Bun")
  t.same(bun.results, VECTOR_EXPECTED)
})

t.test('records sealed on Node open on Bun and the other way round, byte for byte', async t => {
  // Record-like sizes: empty, one byte, a TLS 1.3 inner plaintext cut in two parts, a full 16 KiB record.
  const cases = [0, 1, 1000, 16385].map(length => {
    const plaintext = randomBytes(length)
    return { key: hex(randomBytes(32)), nonce: hex(randomBytes(12)), aad: hex(randomBytes(5)), plaintext }
  })
  const seals: Operation[] = cases.map(c => ({ op: 'seal', key: c.key, nonce: c.nonce, aad: c.aad, data: [hex(c.plaintext.subarray(0, 7)), hex(c.plaintext.subarray(7))] }))
  const sealedOnNode = apply(seals, key => createAead('chacha20-poly1305', key))
  const bun = await onBun([...seals, ...cases.map((c, i): Operation => ({ op: 'open', key: c.key, nonce: c.nonce, aad: c.aad, data: [sealedOnNode[i]!] }))])
  const sealedOnBun = bun.results.slice(0, cases.length)
  t.same(sealedOnBun, sealedOnNode, 'Bun seals the same bytes as node:crypto')
  t.same(bun.results.slice(cases.length), cases.map(c => hex(c.plaintext)), 'Bun opens what Node sealed')
  const openedOnNode = apply(cases.map((c, i) => ({ op: 'open', key: c.key, nonce: c.nonce, aad: c.aad, data: [sealedOnBun[i]!] })), key => createAead('chacha20-poly1305', key))
  t.same(openedOnNode, cases.map(c => hex(c.plaintext)), 'Node opens what Bun sealed')
})
