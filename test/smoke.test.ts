// The built artifacts start on every runtime and agree on the version; the packed package works through npx and bunx.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VERSION } from '../src/version.js'

const root = join(import.meta.dirname, '..')
const bin = (name: string) => join(root, 'node_modules', '.bin', name)
const bundle = join(root, 'dist', 'titus.js')

const launchers: Record<string, string[]> = {
  node: [process.execPath, bundle],
  bun: [bin('bun'), bundle],
  deno: [bin('deno'), 'run', '-A', bundle],
  standalone: [join(root, 'dist', 'titus')],
}

for (const [name, [file, ...args]] of Object.entries(launchers)) {
  t.test(`--version on ${name}`, async t => {
    const r = spawnSync(file!, [...args, '--version'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
    t.equal(r.status, 0, r.stderr)
    t.equal(r.stdout.trim(), `titus ${VERSION}`)
  })
}

t.test('the standalone executable needs no JS runtime on PATH', async t => {
  const r = spawnSync(join(root, 'dist', 'titus'), ['--version'], { encoding: 'utf8', env: { PATH: '/nonexistent' } })
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stdout.trim(), `titus ${VERSION}`)
})

t.test('--help lists every titus option', async t => {
  const r = spawnSync(process.execPath, [bundle, '--help'], { encoding: 'utf8' })
  t.equal(r.status, 0)
  for (const opt of ['--backend-port', '--tlsv1.2', '--honor-client-cipher-order', '--max-handshake-time', '--check-config', 'demo']) {
    t.match(r.stdout, opt)
  }
})

t.test('an unknown option is a usage error that names it (exit 2, like titus)', async t => {
  const r = spawnSync(process.execPath, [bundle, '--no-such-option', 'x'], { encoding: 'utf8' })
  t.equal(r.status, 2)
  t.match(r.stderr, /unknown option --no-such-option/)
  const missing = spawnSync(process.execPath, [bundle, '--backend-port'], { encoding: 'utf8' })
  t.equal(missing.status, 2)
  t.match(missing.stderr, /--backend-port needs a value/)
})

t.test('the packed package runs through npx and bunx', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'titus-pack-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], { cwd: root, encoding: 'utf8' })
  const tarball = join(dir, JSON.parse(out)[0].filename)
  const app = join(dir, 'app')
  execFileSync('mkdir', [app])
  writeFileSync(join(app, 'package.json'), '{"name":"app","version":"1.0.0","private":true}')
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: app, stdio: 'ignore' })
  const npx = spawnSync('npx', ['--offline', 'titus', '--version'], { cwd: app, encoding: 'utf8' })
  t.equal(npx.stdout.trim(), `titus ${VERSION}`, npx.stderr)
  const bunx = spawnSync(bin('bun'), ['x', 'titus', '--version'], { cwd: app, encoding: 'utf8' })
  t.equal(bunx.stdout.trim(), `titus ${VERSION}`, bunx.stderr)
})
