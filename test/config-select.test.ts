// Which vhost a connection gets: local address, local port, SNI; "" = no SNI; first match wins; else none.
import t from 'tap'
import { selectVhost, parseTitusConf, resolveConfig } from '../src/config/index.js'

const CONF = `key /k
cert /c
backend 127.0.0.1
backend-port 80
vhost
	local-address 192.0.2.5
	local-port 443
vhost
	local-address 2001:DB8:0:0::1
	sni-name WWW.Example.com
vhost
	sni-name api.example.com
	sni-name ""
vhost
	local-port 8443
`

t.test('first matching vhost wins; unmatched connections get none', async t => {
  const cfg = resolveConfig(parseTitusConf(CONF, '/etc/titus.conf'))
  const pick = (localAddress: string, localPort: number, serverName?: string) => selectVhost(cfg, { localAddress, localPort, ...(serverName !== undefined && { serverName }) })?.id
  t.equal(pick('192.0.2.5', 443, 'www.example.com'), 1, 'address and port, any SNI')
  t.equal(pick('::ffff:192.0.2.5', 443), 1, 'IPv4-mapped address from a dual-stack socket')
  t.equal(pick('192.0.2.5', 444, 'www.example.com'), undefined, 'wrong port, and no later vhost matches')
  t.equal(pick('2001:db8::1', 443, 'www.EXAMPLE.com'), 2, 'IPv6 compared canonically, SNI case-insensitively')
  t.equal(pick('2001:0db8:0000::0001', 443, 'www.example.com'), 2)
  t.equal(pick('2001:db8::1', 443, 'api.example.com'), 3, 'SNI mismatch falls through to the next vhost')
  t.equal(pick('2001:db8::1', 443), 3, '"" matches a client without SNI')
  t.equal(pick('2001:db8::1', 443, ''), 3, 'an empty server name counts as none')
  t.equal(pick('10.0.0.1', 443, 'www.example.com'), undefined, 'no match: the connection is dropped')
  t.equal(pick('10.0.0.1', 8443, 'anything'), 4)
  t.equal(pick('192.0.2.5', 8443, 'api.example.com'), 3, 'order decides, not specificity')
})

t.test('without vhost blocks the implicit vhost serves everything', async t => {
  const cfg = resolveConfig(parseTitusConf('key /k\ncert /c\nbackend b\nbackend-port 1\n', '/x.conf'))
  t.equal(selectVhost(cfg, { localAddress: '::1', localPort: 1 })?.id, 0)
  t.equal(selectVhost(cfg, { localAddress: '127.0.0.1', localPort: 65535, serverName: 'x' })?.id, 0)
})
