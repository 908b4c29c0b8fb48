// Entry of dist/titus-conn.js, the bundle connection processes start from: it holds only what a connection
// process runs, because every connection pays for parsing its bundle (the full one, with the CLI, config
// and TOML code, costs Bun about 20 ms more per start: docs/benchmarks.md).
import { runConnectionProcess } from './main.js'

runConnectionProcess()
