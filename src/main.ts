// Entry point of dist/titus.js and of the standalone executable: the CLI, or one of titus's internal
// process roles when the supervisor starts us as a child.
import { ROLE_ARGUMENT } from './supervisor/children.js'

const argv = process.argv.slice(2)
if (argv[0] === ROLE_ARGUMENT && argv[1] === 'conn') {
  const { runConnectionProcess } = await import('./conn/main.js')
  runConnectionProcess()
} else if (argv[0] === ROLE_ARGUMENT && argv[1] === 'keyserver') {
  const { runKeyserver } = await import('./keyserver/main.js')
  runKeyserver()
} else {
  const { main } = await import('./cli.js')
  process.exitCode = await main(argv)
}
