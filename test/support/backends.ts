// In-process plaintext backends for titus to forward to.
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Teardown } from './certs.js'

export interface BackendConnection {
  socket: Socket
  // Resolves when the peer's FIN arrived (true) or the socket closed without one (false).
  sawEnd: Promise<boolean>
  // Resolves with the socket error code, if the socket closed because of one.
  closed: Promise<string | undefined>
}

export interface Backend {
  port: number
  connections: BackendConnection[]
  // Resolves with the next (or first not yet taken) connection.
  nextConnection(): Promise<BackendConnection>
}

function listen(t: Teardown, server: Server, onConnection: (socket: Socket) => void): Promise<Backend> {
  const connections: BackendConnection[] = []
  let taken = 0
  const pending: ((c: BackendConnection) => void)[] = []
  server.on('connection', socket => {
    const connection: BackendConnection = {
      socket,
      sawEnd: new Promise(resolve => {
        socket.once('end', () => resolve(true))
        socket.once('close', () => resolve(false))
      }),
      closed: new Promise(resolve => {
        let code: string | undefined
        socket.once('error', (e: NodeJS.ErrnoException) => (code = e.code ?? e.message))
        socket.once('close', () => resolve(code))
      }),
    }
    connections.push(connection)
    const waiter = pending.shift()
    if (waiter) {
      taken++
      waiter(connection)
    }
    onConnection(socket)
  })
  t.teardown(
    () =>
      new Promise<void>(resolve => {
        for (const c of connections) c.socket.destroy()
        server.close(() => resolve())
      }),
  )
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        connections,
        nextConnection: () =>
          taken < connections.length ? Promise.resolve(connections[taken++]!) : new Promise(r => pending.push(r)),
      })
    })
  })
}

// A backend that does nothing by itself: the test drives each connection (nextConnection) by hand.
export function startManualBackend(t: Teardown): Promise<Backend> {
  return listen(t, createServer({ allowHalfOpen: true }), socket => socket.on('error', () => {}))
}

const HTTP_REQUEST_START = /^(GET|POST|PUT|HEAD) \//

// Echoes every byte back and mirrors half-close (FIN in → FIN out). A connection whose first bytes look like an
// HTTP/1.1 request is served by an HTTP server instead, whose response body is the request body (for curl).
export function startEchoBackend(t: Teardown): Promise<Backend> {
  const http = createHttpServer((request, response) => {
    const body: Buffer[] = []
    request.on('data', (b: Buffer) => body.push(b))
    request.on('end', () => {
      const payload = Buffer.concat(body)
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': payload.length })
      response.end(payload)
    })
  })
  const server = createServer({ allowHalfOpen: true })
  return listen(t, server, socket => {
    socket.on('error', () => {})
    let sawData = false
    socket.once('data', (first: Buffer) => {
      sawData = true
      socket.pause()
      if (HTTP_REQUEST_START.test(first.subarray(0, 8).toString('latin1'))) {
        socket.unshift(first)
        http.emit('connection', socket)
        socket.resume()
      } else {
        socket.write(first)
        socket.pipe(socket)
      }
    })
    // No data at all: still mirror the half-close.
    socket.once('end', () => {
      if (!sawData) socket.end()
    })
  })
}

export interface SinkSourceResult {
  receivedBytes: number
  receivedSha256: string
  sentBytes: number
  sentSha256: string
}

// Deterministic-looking bulk data: an AES-CTR keystream under a fresh random key.
export function* bulkData(totalBytes: number, chunkBytes = 256 * 1024): Generator<Buffer> {
  const keystream = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16))
  const zeros = Buffer.alloc(chunkBytes)
  for (let left = totalBytes; left > 0; left -= chunkBytes) yield keystream.update(zeros.subarray(0, Math.min(left, chunkBytes)))
}

// Writes chunks with backpressure; returns their SHA-256. Does not end the stream.
export async function writeAll(socket: Socket, chunks: Iterable<Buffer>): Promise<string> {
  const hash = createHash('sha256')
  for (const chunk of chunks) {
    hash.update(chunk)
    if (!socket.write(chunk)) {
      // A socket that closes while we wait for drain fails the transfer instead of hanging it.
      await new Promise<void>((resolve, reject) => {
        const fail = (e?: Error) => {
          socket.off('drain', done)
          reject(e ?? new Error(`socket closed after ${socket.bytesWritten} bytes written`))
        }
        const done = () => {
          socket.off('error', fail)
          socket.off('close', fail)
          resolve()
        }
        socket.once('error', fail)
        socket.once('close', fail)
        socket.once('drain', done)
      })
    }
  }
  return hash.digest('hex')
}

// Hashes everything until the peer's FIN.
export function readAll(socket: Socket): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  return new Promise((resolve, reject) => {
    socket.on('data', (b: Buffer) => {
      bytes += b.length
      hash.update(b)
    })
    socket.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }))
    socket.once('error', reject)
    socket.once('close', () => reject(new Error(`socket closed without FIN after ${bytes} bytes`)))
  })
}

// Reads and hashes all it gets while sending sendBytes of bulk data, then ends. Results per connection, in order.
export async function startSinkSourceBackend(t: Teardown, sendBytes: number): Promise<Backend & { results: Promise<SinkSourceResult>[] }> {
  const results: Promise<SinkSourceResult>[] = []
  const server = createServer({ allowHalfOpen: true })
  const backend = await listen(t, server, socket => {
    socket.on('error', () => {})
    results.push(
      (async () => {
        const received = readAll(socket)
        const sentSha256 = await writeAll(socket, bulkData(sendBytes))
        socket.end()
        const { bytes, sha256 } = await received
        return { receivedBytes: bytes, receivedSha256: sha256, sentBytes: sendBytes, sentSha256 }
      })(),
    )
  })
  return { ...backend, results }
}
