// Executables in a form titus-launcher accepts as its program. It refuses a program that is not root's or that lies
// below a directory writable by group or others (docs/launcher.md), and a checkout under /tmp is both for Bun and
// Deno from node_modules and for dist/titus. As root, such an executable is copied, once per content, into
// /run/titus-test-programs/ (root-owned, 0755, tmpfs), with `companions` beside it (the standalone titus looks
// for titus-launcher next to itself); elsewhere, or when the launcher takes it as it is, its own path is used.
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

const COPIES = '/run/titus-test-programs'

function launcherAccepts(path: string): boolean {
  for (let p = path; ; p = dirname(p)) {
    const st = statSync(p)
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) return false
    if (p === '/') return true
  }
}

export function launchable(path: string, companions: readonly string[] = []): string {
  const real = realpathSync(path)
  if (process.getuid?.() !== 0 || launcherAccepts(real)) return real
  const files = [real, ...companions.map(c => realpathSync(c))]
  const digest = createHash('sha256')
  for (const file of files) digest.update(readFileSync(file))
  const dir = join(COPIES, digest.digest('hex').slice(0, 16))
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  for (const file of files) {
    const copy = join(dir, basename(file))
    if (existsSync(copy)) continue
    // Test files run in parallel: copy under a private name, then rename into place atomically.
    const partial = `${copy}.${process.pid}`
    copyFileSync(file, partial)
    chmodSync(partial, 0o755)
    renameSync(partial, copy)
  }
  return join(dir, basename(real))
}
