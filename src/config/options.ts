// Every configuration option titus knows, in one table: the CLI (`--name value`), titus.conf
// (`name value`), TOML (`name = value`) and the man page all derive from it.

export type OptionKind =
  | 'string' // free text
  | 'path' // a file or directory name
  | 'int' // a non-negative integer
  | 'bool' // yes | no
  | 'enum' // one of `values`
  | 'address' // ADDRESS:PORT, IPv6 in brackets
  | 'ip' // an IPv4 or IPv6 address, no port

export interface OptionSpec {
  name: string
  kind: OptionKind
  values?: readonly string[]
  // May be given more than once; each occurrence adds a value.
  repeatable?: boolean
  // 'vhost': may appear inside a vhost block, and globally as the default for every vhost.
  // 'vhost-only': only inside a vhost block (what the vhost matches).
  scope: 'global' | 'vhost' | 'vhost-only'
  // Bounds of an 'int' option.
  min?: number
  max?: number
  // The value is a list with this separator; TOML may give it as an array of strings.
  listSeparator?: ':' | ','
  default?: string
  // Values that titus 0.4 accepted but this titus refuses, with the reason given to the user.
  refused?: Readonly<Record<string, string>>
  arg: string
  summary: string
}

// Mozilla's "intermediate" TLS 1.2 list: every ECDHE/DHE AEAD suite titus implements, strongest key
// exchange first. (titus 0.4's default string, given explicitly, selects the same minus ChaCha20.)
const DEFAULT_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:' +
  'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305'

const OBSOLETE_PROTOCOL = 'is insecure and refused (RFC 8996); only TLS 1.2 and 1.3 are supported'

export const OPTIONS: readonly OptionSpec[] = [
  { name: 'config', kind: 'path', repeatable: true, scope: 'global', arg: 'file', summary: 'Read more options from file (titus.conf syntax, or TOML when the name ends in .toml).' },
  { name: 'config-directory', kind: 'path', repeatable: true, scope: 'global', arg: 'dir', summary: 'Read every file in dir, in lexical order, skipping hidden files.' },
  { name: 'daemon', kind: 'bool', scope: 'global', default: 'no', arg: 'yes|no', summary: 'Detach and run in the background after start-up.' },
  { name: 'pid-file', kind: 'path', scope: 'global', arg: 'file', summary: 'Write the supervisor PID to file.' },
  { name: 'port', kind: 'int', min: 0, max: 65535, scope: 'global', arg: 'port', summary: 'Listen on [::]:port (dual-stack), as titus 0.4.' },
  { name: 'listen', kind: 'address', repeatable: true, scope: 'global', arg: 'address:port', summary: 'Listen on address:port (IPv6 in brackets); may be repeated.' },
  { name: 'transparent', kind: 'enum', values: ['yes', 'no', 'backend-only'], scope: 'global', default: 'no', arg: 'yes|no|backend-only', summary: 'Linux transparent proxy mode (IP_TRANSPARENT): keep the client address toward the backend.' },
  { name: 'backend', kind: 'string', scope: 'vhost', arg: 'host', summary: 'Backend host to forward plaintext to.' },
  { name: 'backend-port', kind: 'int', min: 1, max: 65535, scope: 'vhost', arg: 'port', summary: 'Backend port.' },
  { name: 'min-spare-children', kind: 'int', min: 0, max: 10000, scope: 'global', default: '3', arg: 'n', summary: 'Keep n connection processes started and waiting.' },
  { name: 'max-children', kind: 'int', min: 1, max: 1000000, scope: 'global', default: '100', arg: 'n', summary: 'At most n concurrent connections; up to 511 more wait, unread, in the supervisor.' },
  { name: 'max-handshake-time', kind: 'int', min: 1, max: 3600, scope: 'global', default: '10', arg: 'seconds', summary: 'Close a connection whose TLS handshake takes longer.' },
  { name: 'shutdown-timeout', kind: 'int', min: 0, max: 86400, scope: 'global', default: '30', arg: 'seconds', summary: 'On SIGTERM or SIGINT, give active connections this long to finish before they are cut.' },
  { name: 'network-user', kind: 'string', scope: 'global', arg: 'user', summary: 'User that connection processes run as.' },
  { name: 'network-group', kind: 'string', scope: 'global', arg: 'group', summary: 'Group that connection processes run as.' },
  { name: 'keyserver-user', kind: 'string', scope: 'global', arg: 'user', summary: 'User that the keyserver runs as.' },
  { name: 'keyserver-group', kind: 'string', scope: 'global', arg: 'group', summary: 'Group that the keyserver runs as.' },
  { name: 'chroot', kind: 'path', scope: 'global', arg: 'dir', summary: 'Empty directory to use as root, from titus 0.4: it must be a directory owned by root, but titus-launcher gives each sandbox its own empty root instead.' },
  { name: 'isolation', kind: 'enum', values: ['strict', 'pooled', 'none'], scope: 'global', default: 'strict', arg: 'strict|pooled|none', summary: 'strict: a new sandboxed process per connection; pooled: many connections per sandboxed process; none: development only.' },
  { name: 'log-format', kind: 'enum', values: ['text', 'json'], scope: 'global', default: 'text', arg: 'text|json', summary: 'Format of the log lines on stderr.' },
  { name: 'local-address', kind: 'ip', scope: 'vhost-only', arg: 'address', summary: 'This vhost matches only connections to this local IP address.' },
  { name: 'local-port', kind: 'int', min: 1, max: 65535, scope: 'vhost-only', arg: 'port', summary: 'This vhost matches only connections to this local port.' },
  { name: 'sni-name', kind: 'string', repeatable: true, scope: 'vhost-only', arg: 'name', summary: 'This vhost matches only clients sending this server name (case-insensitive); "" matches clients sending none. May be repeated.' },
  { name: 'key', kind: 'path', scope: 'vhost', arg: 'file', summary: 'PEM private key matching the certificate (checked at load; then only the keyserver holds it).' },
  { name: 'cert', kind: 'path', scope: 'vhost', arg: 'file', summary: 'PEM certificate chain, leaf first; a file that contains a private key is refused.' },
  { name: 'ciphers', kind: 'string', scope: 'vhost', default: DEFAULT_CIPHERS, arg: 'list', summary: 'TLS 1.2 suites as an OpenSSL cipher string (only ECDHE/DHE AEAD suites are ever selected).' },
  { name: 'ciphersuites', kind: 'string', scope: 'vhost', listSeparator: ':', default: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256', arg: 'list', summary: 'TLS 1.3 suites, colon-separated, in preference order.' },
  { name: 'honor-client-cipher-order', kind: 'bool', scope: 'vhost', default: 'no', arg: 'yes|no', summary: "Prefer the client's cipher order over ours." },
  { name: 'dhgroup', kind: 'string', scope: 'vhost', listSeparator: ':', default: 'ffdhe2048:ffdhe3072', arg: 'groups|file', summary: 'Finite-field DH groups in preference order: ffdhe2048, ffdhe3072, ffdhe4096 (RFC 7919), 14, 15, 16 (RFC 3526, TLS 1.2 only, first place only), or a PEM DH parameters file (TLS 1.2 only).' },
  { name: 'ecdhcurve', kind: 'string', scope: 'vhost', listSeparator: ':', default: 'x25519:secp256r1:secp384r1', arg: 'curves', summary: 'Elliptic curves in preference order: x25519, prime256v1/secp256r1, secp384r1.' },
  { name: 'alpn', kind: 'string', scope: 'vhost', listSeparator: ',', arg: 'protocols', summary: 'Comma-separated ALPN protocols to offer; a client with no overlap gets no_application_protocol.' },
  { name: 'compression', kind: 'bool', scope: 'vhost', default: 'no', refused: { yes: 'TLS compression enables CRIME-style attacks and is refused' }, arg: 'no', summary: 'Accepted only as no.' },
  { name: 'sslv3', kind: 'bool', scope: 'vhost', default: 'no', refused: { yes: `SSLv3 ${OBSOLETE_PROTOCOL}` }, arg: 'no', summary: 'Accepted only as no.' },
  { name: 'tlsv1', kind: 'bool', scope: 'vhost', default: 'no', refused: { yes: `TLS 1.0 ${OBSOLETE_PROTOCOL}` }, arg: 'no', summary: 'Accepted only as no.' },
  { name: 'tlsv1.1', kind: 'bool', scope: 'vhost', default: 'no', refused: { yes: `TLS 1.1 ${OBSOLETE_PROTOCOL}` }, arg: 'no', summary: 'Accepted only as no.' },
  { name: 'tlsv1.2', kind: 'bool', scope: 'vhost', default: 'yes', arg: 'yes|no', summary: 'Enable TLS 1.2.' },
  { name: 'tlsv1.3', kind: 'bool', scope: 'vhost', default: 'yes', arg: 'yes|no', summary: 'Enable TLS 1.3.' },
  { name: 'extended-master-secret', kind: 'bool', scope: 'vhost', default: 'yes', arg: 'yes|no', summary: 'TLS 1.2: require the extended master secret (RFC 7627); no also serves clients without it.' },
]

export const OPTION_BY_NAME: ReadonlyMap<string, OptionSpec> = new Map(OPTIONS.map(o => [o.name, o]))
