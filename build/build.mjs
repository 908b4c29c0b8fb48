// Builds everything under dist/: the JS bundles (esbuild), the standalone executable (bun build --compile)
// and the C launcher (system cc). Run as `npm run build`; `--js-only` skips the executable and the launcher.
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const jsOnly = process.argv.includes('--js-only')

// One line per bundle: output name (dist/<name>.js) → entry source.
const ENTRIES = {
  titus: 'src/main.ts',
  'titus-conn': 'src/conn/entry.ts',
}

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
mkdirSync(dist, { recursive: true })

await build({
  absWorkingDir: root,
  entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, src]) => [name, src])),
  outdir: dist,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: ['node20'],
  // node: builtins stay imports; Bun and Deno provide them too.
  packages: 'bundle',
  banner: { js: '#!/usr/bin/env node\n// titus ' + version + ' (bundled; sources at src/)' },
  legalComments: 'eof',
  logLevel: 'warning',
})

if (!jsOnly) {
  // Standalone linux-x64 executable: Bun comes from its npm package, so nothing is downloaded here.
  // --bytecode: every connection process starts this executable, and precompiled bytecode cuts its start-up
  // CPU about fourfold (docs/benchmarks.md).
  const bun = join(root, 'node_modules', '.bin', 'bun')
  execFileSync(bun, ['build', '--compile', '--bytecode', '--format=esm', '--minify-whitespace', join(dist, 'titus.js'), '--outfile', join(dist, 'titus')], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const launcher = join(root, 'src', 'launcher', 'titus-launcher.c')
  if (existsSync(launcher)) {
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', join(dist, 'titus-launcher'), launcher], { stdio: 'inherit' })
  }
}
