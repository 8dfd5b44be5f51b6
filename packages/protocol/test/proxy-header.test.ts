import { expect } from 'chai';
import { PROXY_V1_MAX_LENGTH, parseProxyHeader, type ParsedProxyHeader } from '@tunnelrpc/protocol/internal';
import { expectThrows, hex } from '@tunnelrpc/test-kit';

const SIGNATURE = '0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a';
const AFTER = Buffer.from('CONNECT /_rpc HTTP/1.0\r\n\r\n', 'latin1');

// v2 PROXY, TCP over IPv4, 192.0.2.1:56324 -> 198.51.100.2:443
const V2_IPV4 = hex(`
  ${SIGNATURE}
  21                 // version 2, command PROXY
  11                 // INET, STREAM
  00 0c              // 12 bytes follow
  c0 00 02 01        // source 192.0.2.1
  c6 33 64 02        // destination 198.51.100.2
  dc 04              // source port 56324
  01 bb              // destination port 443
`);

// v2 PROXY, TCP over IPv6, 2001:db8::1:8080 -> ::1:443, then a 7-byte TLV (type 0x04 NOOP, length 4)
const V2_IPV6_TLV = hex(`
  ${SIGNATURE}
  21 21
  00 2b              // 36 + 7 = 43 bytes follow
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01  // source 2001:db8::1
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01  // destination ::1
  1f 90 01 bb        // ports 8080, 443
  04 00 04 de ad be ef  // TLV NOOP, skipped
`);

// v2 LOCAL (a health check), UNSPEC, no addresses
const V2_LOCAL = hex(`${SIGNATURE} 20 00 00 00`);

/** parsedWhole asserts `bytes` + AFTER parses to a header consuming exactly `bytes`, whole and split at every offset. */
function parsedWhole(bytes: Buffer): ParsedProxyHeader {
  const all = Buffer.concat([bytes, AFTER]);
  const parsed = parseProxyHeader(all);
  expect(parsed?.consumed).to.equal(bytes.length);
  for (let cut = 0; cut < bytes.length; cut++) {
    expect(parseProxyHeader(all.subarray(0, cut)), `first ${cut} bytes`).to.equal(undefined);
  }
  expect(parseProxyHeader(bytes)?.consumed).to.equal(bytes.length);
  return parsed!;
}

describe('parseProxyHeader', () => {
  describe('v1', () => {
    it('reads TCP4 with the source and destination, consuming through the CRLF only', () => {
      const { header } = parsedWhole(Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n', 'latin1'));
      expect(header).to.deep.equal({ version: 1, command: 'proxy', family: 'IPv4', sourceAddress: '192.0.2.1', sourcePort: 56324, destinationAddress: '198.51.100.2', destinationPort: 443 });
    });

    it('reads TCP6, lower-casing the addresses', () => {
      const { header } = parsedWhole(Buffer.from('PROXY TCP6 2001:DB8::1 ::ffff:192.0.2.1 1 65535\r\n', 'latin1'));
      expect(header).to.deep.include({ family: 'IPv6', sourceAddress: '2001:db8::1', destinationAddress: '::ffff:192.0.2.1', sourcePort: 1, destinationPort: 65535 });
    });

    it('reads PROXY UNKNOWN, with or without addresses, as local (use the socket address)', () => {
      expect(parsedWhole(Buffer.from('PROXY UNKNOWN\r\n', 'latin1')).header).to.deep.equal({ version: 1, command: 'local' });
      expect(parsedWhole(Buffer.from('PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n', 'latin1')).header).to.deep.equal({ version: 1, command: 'local' });
    });

    it(`accepts a line of exactly ${PROXY_V1_MAX_LENGTH} bytes and refuses one byte more without a CRLF`, () => {
      const longest = `PROXY UNKNOWN ${'x'.repeat(PROXY_V1_MAX_LENGTH - 16)}\r\n`;
      expect(longest.length).to.equal(PROXY_V1_MAX_LENGTH);
      expect(parseProxyHeader(Buffer.from(longest, 'latin1'))?.consumed).to.equal(PROXY_V1_MAX_LENGTH);
      const tooLong = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(PROXY_V1_MAX_LENGTH - 15)}\r\n`, 'latin1');
      expect(parseProxyHeader(tooLong.subarray(0, PROXY_V1_MAX_LENGTH - 1))).to.equal(undefined);
      expectThrows(() => parseProxyHeader(tooLong), 'INVALID_ARGUMENT', 'no CRLF within 107 bytes');
    });

    const hostile: Array<[string, string, string]> = [
      ['bare LF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', 'must end with CRLF'],
      ['an octet over 255', 'PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', 'not IPv4'],
      ['a leading zero', 'PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n', 'not IPv4'],
      ['IPv6 under TCP4', 'PROXY TCP4 ::1 ::1 1 2\r\n', 'not IPv4'],
      ['IPv4 under TCP6', 'PROXY TCP6 1.2.3.4 ::1 1 2\r\n', 'not IPv6'],
      ['two "::"', 'PROXY TCP6 1::2::3 ::1 1 2\r\n', 'not IPv6'],
      ['a port over 65535', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', 'port'],
      ['a missing field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', 'must be'],
      ['two spaces', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n', 'must be'],
      ['an unknown protocol', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', 'must be'],
      ['a control byte', 'PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n', 'control'],
      ['lower-case proxy', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n', 'did not start with a PROXY protocol header'],
      ['a CONNECT with no header', 'CONNECT /_rpc HTTP/1.0\r\n\r\n', 'did not start with a PROXY protocol header'],
    ];
    for (const [what, text, fragment] of hostile) {
      it(`refuses ${what}`, () => {
        expectThrows(() => parseProxyHeader(Buffer.from(text, 'latin1')), 'INVALID_ARGUMENT', fragment);
      });
    }

    it('refuses a wrong first byte at once, without waiting for more', () => {
      expectThrows(() => parseProxyHeader(Buffer.from('G', 'latin1')), 'INVALID_ARGUMENT', 'PROXY protocol header');
      expect(parseProxyHeader(Buffer.from('PROX', 'latin1'))).to.equal(undefined);
    });
  });

  describe('v2', () => {
    it('reads PROXY over IPv4, consuming exactly 16 + length bytes', () => {
      const { header } = parsedWhole(V2_IPV4);
      expect(header).to.deep.equal({ version: 2, command: 'proxy', family: 'IPv4', sourceAddress: '192.0.2.1', sourcePort: 56324, destinationAddress: '198.51.100.2', destinationPort: 443 });
    });

    it('reads PROXY over IPv6 in the form Node reports, skipping TLVs', () => {
      const { header, consumed } = parsedWhole(V2_IPV6_TLV);
      expect(consumed).to.equal(16 + 43);
      expect(header).to.deep.include({ family: 'IPv6', sourceAddress: '2001:db8::1', destinationAddress: '::1', sourcePort: 8080, destinationPort: 443 });
    });

    it('writes an IPv4-mapped IPv6 source as ::ffff:a.b.c.d', () => {
      const mapped = hex(`${SIGNATURE} 21 21 00 24 00000000000000000000ffff7f000001 00000000000000000000000000000001 0001 0002`);
      expect(parsedWhole(mapped).header).to.deep.include({ sourceAddress: '::ffff:127.0.0.1' });
    });

    it('reads LOCAL (health checks) as local, whatever family it names, skipping its length', () => {
      expect(parsedWhole(V2_LOCAL).header).to.deep.equal({ version: 2, command: 'local' });
      expect(parsedWhole(hex(`${SIGNATURE} 20 11 00 0c 7f000001 7f000001 0001 0002`)).header).to.deep.equal({ version: 2, command: 'local' });
    });

    it('reads PROXY with UNSPEC or UNIX addresses as local', () => {
      expect(parsedWhole(hex(`${SIGNATURE} 21 00 00 00`)).header).to.deep.equal({ version: 2, command: 'local' });
      expect(parsedWhole(hex(`${SIGNATURE} 21 31 00 04 00000000`)).header).to.deep.equal({ version: 2, command: 'local' });
    });

    it('never reads past 16 + length: the bytes behind belong to the connection', () => {
      const behind = Buffer.concat([V2_LOCAL, V2_IPV4]);
      expect(parseProxyHeader(behind)).to.deep.equal({ header: { version: 2, command: 'local' }, consumed: 16 });
    });

    const hostile: Array<[string, string, string]> = [
      ['version 1 in the v2 layout', `${SIGNATURE} 11 11 00 0c 7f000001 7f000001 0001 0002`, 'version 1'],
      ['command 2', `${SIGNATURE} 22 11 00 0c 7f000001 7f000001 0001 0002`, 'command 2'],
      ['family 4', `${SIGNATURE} 21 41 00 00`, 'unknown address family'],
      ['a UDP connection', `${SIGNATURE} 21 12 00 0c 7f000001 7f000001 0001 0002`, 'datagram'],
      ['IPv4 addresses cut short', `${SIGNATURE} 21 11 00 08 7f000001 7f000001`, 'too short'],
      ['IPv6 addresses cut short', `${SIGNATURE} 21 21 00 0c 7f000001 7f000001 0001 0002`, 'too short'],
      ['a broken signature', '0d 0a 0d 0a 00 0d 0a 51 55 49 54 0b 21 11 00 00', 'did not start with a PROXY protocol header'],
    ];
    for (const [what, bytes, fragment] of hostile) {
      it(`refuses ${what}`, () => {
        expectThrows(() => parseProxyHeader(hex(bytes)), 'INVALID_ARGUMENT', fragment);
      });
    }

    it('waits for the whole declared length (up to 16 + 65535 bytes), and no more', () => {
      const header = hex(`${SIGNATURE} 20 00 ff ff`);
      expect(parseProxyHeader(Buffer.concat([header, Buffer.alloc(65534)]))).to.equal(undefined);
      expect(parseProxyHeader(Buffer.concat([header, Buffer.alloc(65536)]))?.consumed).to.equal(16 + 65535);
    });

    it('refuses a broken signature at its first wrong byte, without waiting for 16 bytes', () => {
      expectThrows(() => parseProxyHeader(hex('0d 0a 0d 0a 01')), 'INVALID_ARGUMENT', 'PROXY protocol header');
    });
  });
});
