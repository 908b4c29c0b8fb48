// `npm start` runs `titus demo`: the curl command it prints must work as printed, and Ctrl-C must stop it cleanly.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { exited, spawnTracked } from './support/process.js'

const bundle = join(import.meta.dirname, '..', 'dist', 'titus.js')

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

t.test('titus demo serves the printed curl command, and stops on SIGINT', async t => {
  const port = await freePort()
  const demo = spawnTracked(t, process.execPath, [bundle, 'demo', '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  demo.stderr!.setEncoding('utf8')
  const ready = new Promise<void>((resolve, reject) => {
    demo.stderr!.on('data', (s: string) => {
      stderr += s
      if (/listening on/.test(stderr) && /try\s+curl/.test(stderr)) resolve()
    })
    demo.once('exit', () => reject(new Error(`demo exited early:\n${stderr}`)))
    setTimeout(() => reject(new Error(`demo not ready:\n${stderr}`)), 20_000).unref()
  })
  await ready
  const command = /try\s+(curl .*)$/m.exec(stderr)![1]!.trim().split(/\s+/)
  t.match(command.join(' '), `https://localhost:${port}/`, 'the command names the demo port')
  const certFile = command[command.indexOf('--cacert') + 1]!
  const body = execFileSync(command[0]!, ['--silent', '--show-error', '--max-time', '10', ...command.slice(1)], { encoding: 'utf8' })
  t.match(body, /Hello from the titus .* demo backend/, 'curl got the demo backend through titus, certificate verified')
  demo.kill('SIGINT')
  const exit = await exited(demo)
  t.equal(exit.code, 0, 'exit status 0 after SIGINT')
  t.notOk(existsSync(certFile), 'the temporary certificate is removed')
})
