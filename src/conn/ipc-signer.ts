// A Signer that asks the keyserver, through the supervisor, to sign: the connection process never holds a key.
import type { Signer } from '../tls/index.js'
import type { FromConn } from '../ipc/messages.js'

export class IpcSigner implements Signer {
  private nextId = 1
  private readonly pending = new Map<number, { resolve(sig: Uint8Array): void; reject(err: Error): void }>()

  constructor(
    readonly schemes: readonly number[],
    private readonly conn: number,
    private readonly send: (m: FromConn) => void,
  ) {}

  sign(scheme: number, message: Uint8Array): Promise<Uint8Array> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.send({ t: 'sign', conn: this.conn, id, scheme, message: Buffer.from(message).toString('base64') })
    })
  }

  settle(id: number, signature: string | undefined): void {
    const p = this.pending.get(id)
    if (!p) return
    this.pending.delete(id)
    if (signature === undefined) p.reject(new Error('the keyserver refused to sign'))
    else p.resolve(Buffer.from(signature, 'base64'))
  }
}
