// TLS 1.3 key schedule (RFC 8446 §7.1) and traffic key derivation (§7.3).
import {
  AEAD_KEY_LENGTH,
  AEAD_NONCE_LENGTH,
  HASH_LENGTH,
  hash,
  hkdfExpand,
  hkdfExtract,
  hmac,
  type AeadName,
  type HashName,
} from '../crypto/provider.js'
import { Writer } from './codec.js'

const LABEL_PREFIX = Buffer.from('tls13 ', 'latin1')

export function hkdfExpandLabel(h: HashName, secret: Uint8Array, label: string, context: Uint8Array, length: number): Buffer {
  const info = new Writer(64)
    .u16(length)
    .vector(1, w => w.bytes(LABEL_PREFIX).bytes(Buffer.from(label, 'latin1')))
    .vector(1, w => w.bytes(context))
    .finish()
  return hkdfExpand(h, secret, info, length)
}

export function deriveSecret(h: HashName, secret: Uint8Array, label: string, transcriptHash: Uint8Array): Buffer {
  return hkdfExpandLabel(h, secret, label, transcriptHash, HASH_LENGTH[h])
}

export interface TrafficKeys {
  readonly key: Buffer
  readonly iv: Buffer
}

export function trafficKeys(h: HashName, aead: AeadName, trafficSecret: Uint8Array): TrafficKeys {
  const empty = new Uint8Array(0)
  return {
    key: hkdfExpandLabel(h, trafficSecret, 'key', empty, AEAD_KEY_LENGTH[aead]),
    iv: hkdfExpandLabel(h, trafficSecret, 'iv', empty, AEAD_NONCE_LENGTH),
  }
}

/** Finished.verify_data = HMAC(finished_key, transcript hash) (RFC 8446 §4.4.4). */
export function finishedVerifyData(h: HashName, baseKey: Uint8Array, transcriptHash: Uint8Array): Buffer {
  const finishedKey = hkdfExpandLabel(h, baseKey, 'finished', new Uint8Array(0), HASH_LENGTH[h])
  const verifyData = hmac(h, finishedKey, transcriptHash)
  finishedKey.fill(0)
  return verifyData
}

/** application_traffic_secret_N+1 (RFC 8446 §7.2). */
export function nextTrafficSecret(h: HashName, secret: Uint8Array): Buffer {
  return hkdfExpandLabel(h, secret, 'traffic upd', new Uint8Array(0), HASH_LENGTH[h])
}

export interface HandshakeSecrets {
  readonly handshakeSecret: Buffer
  readonly clientHandshakeTrafficSecret: Buffer
  readonly serverHandshakeTrafficSecret: Buffer
}

export interface ApplicationSecrets {
  readonly masterSecret: Buffer
  readonly clientApplicationTrafficSecret: Buffer
  readonly serverApplicationTrafficSecret: Buffer
  readonly exporterMasterSecret: Buffer
}

/** The schedule for a handshake without PSK: early secret from zeros, then (EC)DHE, then master. */
export class KeySchedule {
  private readonly zeros: Buffer
  private readonly emptyHash: Buffer

  constructor(readonly hashName: HashName) {
    this.zeros = Buffer.alloc(HASH_LENGTH[hashName])
    this.emptyHash = hash(hashName, [])
  }

  earlySecret(psk?: Uint8Array): Buffer {
    return hkdfExtract(this.hashName, this.zeros, psk ?? this.zeros)
  }

  /** transcriptHash covers ClientHello..ServerHello. */
  handshakeSecrets(sharedSecret: Uint8Array, transcriptHash: Uint8Array, psk?: Uint8Array): HandshakeSecrets {
    const early = this.earlySecret(psk)
    const salt = deriveSecret(this.hashName, early, 'derived', this.emptyHash)
    const handshakeSecret = hkdfExtract(this.hashName, salt, sharedSecret)
    early.fill(0)
    salt.fill(0)
    return {
      handshakeSecret,
      clientHandshakeTrafficSecret: deriveSecret(this.hashName, handshakeSecret, 'c hs traffic', transcriptHash),
      serverHandshakeTrafficSecret: deriveSecret(this.hashName, handshakeSecret, 's hs traffic', transcriptHash),
    }
  }

  /** transcriptHash covers ClientHello..server Finished. */
  applicationSecrets(handshakeSecret: Uint8Array, transcriptHash: Uint8Array): ApplicationSecrets {
    const salt = deriveSecret(this.hashName, handshakeSecret, 'derived', this.emptyHash)
    const masterSecret = hkdfExtract(this.hashName, salt, this.zeros)
    salt.fill(0)
    return {
      masterSecret,
      clientApplicationTrafficSecret: deriveSecret(this.hashName, masterSecret, 'c ap traffic', transcriptHash),
      serverApplicationTrafficSecret: deriveSecret(this.hashName, masterSecret, 's ap traffic', transcriptHash),
      exporterMasterSecret: deriveSecret(this.hashName, masterSecret, 'exp master', transcriptHash),
    }
  }

  /** transcriptHash covers ClientHello..client Finished. */
  resumptionMasterSecret(masterSecret: Uint8Array, transcriptHash: Uint8Array): Buffer {
    return deriveSecret(this.hashName, masterSecret, 'res master', transcriptHash)
  }
}

/** Running transcript; keeps the messages so the hash can be chosen after the cipher suite is. */
export class Transcript {
  private messages: Uint8Array[] = []

  add(message: Uint8Array): void {
    this.messages.push(message)
  }

  hash(h: HashName): Buffer {
    return hash(h, this.messages)
  }

  /** Replaces ClientHello1 with message_hash(Hash(ClientHello1)) before a HelloRetryRequest (RFC 8446 §4.4.1). */
  replaceWithMessageHash(h: HashName, messageHashType: number): void {
    const digest = this.hash(h)
    this.messages = [Buffer.concat([Buffer.of(messageHashType, 0, 0, digest.length), digest])]
  }
}
