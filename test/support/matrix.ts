// TLS 1.3 interop matrices: real clients, rotated over combinations of group, suite and certificate type, against
// one titus per certificate type; a few run at a time, and each is checked for its suite and group.
import type { Test } from 'tap'
import type { CertKind } from './certs.js'
import { CLIENTS, CLIENT_NAMES, type ClientName } from './clients.js'
import type { GroupName, SuiteName } from './wire.js'

export interface Tls13Combo {
  group: GroupName
  suite: SuiteName
  kind: CertKind
  client: ClientName
}

/** The client at `position` of a rotation over all of them. */
export function rotatingClient(position: number): ClientName {
  return CLIENT_NAMES[position % CLIENT_NAMES.length]!
}

/**
 * Runs each combination (three at a time) against the titus for its certificate type: verified chain, byte-exact
 * echo, the suite and the group. Returns `client:item` for every suite, group and certificate type a client
 * succeeded with.
 */
export async function runTls13Matrix(t: Test, combos: readonly Tls13Combo[], servers: Record<CertKind, { port: number }>, caFile: string): Promise<Set<string>> {
  const covered = new Set<string>()
  const queue = [...combos]
  const worker = async () => {
    for (let combo = queue.shift(); combo; combo = queue.shift()) {
      const { group, suite, kind, client } = combo
      const r = await CLIENTS[client](t, { port: servers[kind].port, caFile, groups: [group], suite })
      const label = `${client} ${group} ${suite} ${kind}`
      t.ok(r.ok, `${label}: verified chain, byte-exact echo`, { detail: r.detail })
      t.equal(r.suite, suite, `${label}: suite`)
      // curl cannot tell the group; it offered only this one, so success means it was used.
      if (client !== 'curl') t.equal(r.group, group, `${label}: group`)
      if (r.ok) for (const item of [suite, group, kind]) covered.add(`${client}:${item}`)
    }
  }
  await Promise.all([worker(), worker(), worker()])
  return covered
}
