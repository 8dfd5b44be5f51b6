import { expect } from 'chai';
import {
  CONNECTED_RESPONSE,
  DEFAULT_MAX_HEAD_SIZE,
  DEFAULT_RPC_PATH,
  SERVER_MARKER_HEADER,
  SERVER_MARKER_VALUE,
  SWITCHING_RESPONSE,
  UPGRADE_TOKEN,
  encodeConnectRequest,
  encodeMessage,
  encodeProxyConnectRequest,
  encodeUpgradeRequest,
  isTunnelrpcReply,
  parseResponseHead,
} from '@tunnelrpc/protocol/internal';
import { expectThrows, hex, toHex } from '@tunnelrpc/test-kit';

/** latin1 turns header text into bytes one char per byte, as HTTP heads travel. */
function latin1(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** headOfSize builds `HTTP/1.0 200 Connected` plus one padding header, CRLF CRLF included, of exactly `size` bytes. */
function headOfSize(size: number): Buffer {
  const start = 'HTTP/1.0 200 Connected\r\nX-Pad: ';
  const end = '\r\n\r\n';
  return latin1(start + 'a'.repeat(size - start.length - end.length) + end);
}

// A ping frame as a server might send right behind its 200 line.
const FRAME = encodeMessage({ type: 6, data: 'hi' });

describe('handshake constants', () => {
  it('defines the default path, the accepted reply and the 8 KiB head cap', () => {
    expect(DEFAULT_RPC_PATH).to.equal('/_rpc');
    expect(CONNECTED_RESPONSE).to.equal('HTTP/1.0 200 Connected\r\n\r\n');
    expect(DEFAULT_MAX_HEAD_SIZE).to.equal(8192);
  });
});

describe('encodeConnectRequest', () => {
  it('writes the CONNECT request line, Host and the headers, byte for byte', () => {
    const bytes = encodeConnectRequest('/_rpc', 'h:1', { Authorization: 'x' });
    expect(bytes.toString('latin1')).to.equal('CONNECT /_rpc HTTP/1.0\r\nHost: h:1\r\nAuthorization: x\r\n\r\n');
  });

  it('writes only the request line and Host when there are no headers', () => {
    expect(encodeConnectRequest('/_rpc', 'example.com:443').toString('latin1')).to.equal(
      'CONNECT /_rpc HTTP/1.0\r\nHost: example.com:443\r\n\r\n',
    );
  });

  it('keeps the header order and skips a Host header in any case, writing Host once', () => {
    const text = encodeConnectRequest('/rpc', 'h:1', { 'X-A': '1', host: 'evil', HOST: 'evil', 'X-B': '2' }).toString('latin1');
    expect(text).to.equal('CONNECT /rpc HTTP/1.0\r\nHost: h:1\r\nX-A: 1\r\nX-B: 2\r\n\r\n');
  });

  it('accepts tabs, visible ASCII and obs-text (0x80-0xff) in values, written one byte per char', () => {
    const bytes = encodeConnectRequest('/_rpc', 'h', { 'X-V': 'a\tb ~ \u00e9' });
    expect(toHex(bytes.subarray(bytes.indexOf('X-V: ') + 5, bytes.length - 4))).to.equal('61 09 62 20 7e 20 e9');
  });

  it('refuses CR, LF, NUL, DEL and chars above 0xff in a header value (header injection)', () => {
    for (const value of ['x\r\nEvil: 1', 'x\nEvil: 1', 'x\rEvil', 'x\u0000', 'x\u007f', 'x\u010d\u010aEvil: 1', '\u2028']) {
      expectThrows(() => encodeConnectRequest('/_rpc', 'h', { 'X-Token': value }), 'INVALID_ARGUMENT', '"X-Token"');
    }
  });

  it('refuses header names that are not HTTP tokens', () => {
    for (const name of ['', 'Bad Name', 'X\r\nEvil', 'a:b', 'X\u00e9', '(x)']) {
      expectThrows(() => encodeConnectRequest('/_rpc', 'h', { [name]: 'v' }), 'INVALID_ARGUMENT', 'handshake header');
    }
  });

  it('refuses a path that does not start with "/" or holds whitespace', () => {
    for (const path of ['', '_rpc', 'http://h/_rpc', '/a b', '/a\r\nb', '/a\tb', '/a\nEvil: 1']) {
      expectThrows(() => encodeConnectRequest(path, 'h'), 'INVALID_ARGUMENT', 'must start with "/"');
    }
  });
});

describe('parseResponseHead', () => {
  it('parses the exact 200 reply and keeps every frame byte after the blank line in rest', () => {
    const buf = Buffer.concat([latin1(CONNECTED_RESPONSE), FRAME]);
    const head = parseResponseHead(buf);
    expect(head).to.not.equal(undefined);
    expect(head!.status).to.equal(200);
    expect(head!.reason).to.equal('Connected');
    expect(head!.headers).to.deep.equal({});
    expect(toHex(head!.rest)).to.equal(toHex(FRAME));
  });

  it('returns an empty rest when nothing follows the head', () => {
    const head = parseResponseHead(latin1(CONNECTED_RESPONSE));
    expect(head?.rest.length).to.equal(0);
  });

  it('returns undefined until the head is complete, at every split, then keeps what follows', () => {
    const buf = Buffer.concat([latin1(CONNECTED_RESPONSE), FRAME]);
    const headLength = CONNECTED_RESPONSE.length;
    for (let at = 0; at < headLength; at++) {
      expect(parseResponseHead(buf.subarray(0, at)), `first ${at} bytes`).to.equal(undefined);
    }
    for (let at = headLength; at <= buf.length; at++) {
      const head = parseResponseHead(buf.subarray(0, at));
      expect(head?.status, `first ${at} bytes`).to.equal(200);
      expect(toHex(head!.rest)).to.equal(toHex(buf.subarray(headLength, at)));
    }
  });

  it('accepts bare LF line ends and keeps the bytes after them', () => {
    const head = parseResponseHead(Buffer.concat([latin1('HTTP/1.0 200 Connected\nX-A: 1\n\n'), FRAME]));
    expect(head?.status).to.equal(200);
    expect(head?.headers).to.deep.equal({ 'x-a': '1' });
    expect(toHex(head!.rest)).to.equal(toHex(FRAME));
  });

  it('accepts mixed line ends: LF then CRLF, and CRLF then LF', () => {
    const a = parseResponseHead(Buffer.concat([latin1('HTTP/1.1 200 OK\r\nX-A: 1\n\r\n'), FRAME]));
    expect([a?.status, a?.headers['x-a'], toHex(a!.rest)]).to.deep.equal([200, '1', toHex(FRAME)]);
    const b = parseResponseHead(Buffer.concat([latin1('HTTP/1.1 200 OK\r\n\n'), FRAME]));
    expect([b?.status, toHex(b!.rest)]).to.deep.equal([200, toHex(FRAME)]);
  });

  it('parses a 401 with headers and keeps its body, blank lines included, in rest', () => {
    const body = 'bad token\r\n\r\nsecond paragraph';
    const buf = latin1(
      'HTTP/1.1 401 Unauthorized\r\n' +
      'Content-Type: text/plain\r\n' +
      'WWW-Authenticate:   Bearer realm="rpc"  \r\n' +
      `Content-Length: ${body.length}\r\n` +
      'Connection: close\r\n' +
      '\r\n' + body,
    );
    const head = parseResponseHead(buf);
    expect(head?.status).to.equal(401);
    expect(head?.reason).to.equal('Unauthorized');
    expect(head?.headers).to.deep.equal({
      'content-type': 'text/plain',
      'www-authenticate': 'Bearer realm="rpc"',
      'content-length': String(body.length),
      connection: 'close',
    });
    expect(head?.rest.toString('latin1')).to.equal(body);
  });

  it('keeps the last value of a repeated header and skips lines without a name', () => {
    const head = parseResponseHead(latin1('HTTP/1.0 503 Service Unavailable\r\nX-A: 1\r\nno colon\r\n: empty\r\nx-a: 2\r\n\r\n'));
    expect(head?.status).to.equal(503);
    expect(head?.headers).to.deep.equal({ 'x-a': '2' });
  });

  it('gives an empty reason when the status line has none', () => {
    const head = parseResponseHead(latin1('HTTP/1.0 200\r\n\r\n'));
    expect([head?.status, head?.reason]).to.deep.equal([200, '']);
  });

  it('stores a __proto__ header as data, without touching Object.prototype', () => {
    const head = parseResponseHead(latin1('HTTP/1.0 200 OK\r\n__proto__: polluted\r\nConstructor: x\r\n\r\n'));
    expect(head?.headers['__proto__']).to.equal('polluted');
    expect(Object.getPrototypeOf(head?.headers)).to.equal(null);
    expect(Object.getPrototypeOf({})).to.equal(Object.prototype);
  });

  it('returns undefined for an unfinished head of maxHeadSize bytes and throws UNAVAILABLE at maxHeadSize + 1', () => {
    const unfinished = latin1(`HTTP/1.0 200 OK\r\nX: ${'a'.repeat(200)}`); // no blank line yet
    expect(parseResponseHead(unfinished.subarray(0, 100), 100)).to.equal(undefined);
    const error = expectThrows(() => parseResponseHead(unfinished.subarray(0, 101), 100), 'UNAVAILABLE', 'passed 100 bytes');
    expect(error.data).to.deep.equal({ maxHeadSize: 100 });
  });

  it('throws UNAVAILABLE for a complete head far over maxHeadSize', () => {
    expectThrows(() => parseResponseHead(headOfSize(300), 100), 'UNAVAILABLE', 'passed 100 bytes');
  });

  it('throws UNAVAILABLE for a head over the default 8 KiB', () => {
    const buf = latin1(`HTTP/1.0 200 OK\r\nX: ${'a'.repeat(9000)}`);
    expectThrows(() => parseResponseHead(buf), 'UNAVAILABLE', 'passed 8192 bytes');
  });

  it('accepts a complete head of exactly maxHeadSize bytes', () => {
    const head = parseResponseHead(Buffer.concat([headOfSize(100), FRAME]), 100);
    expect(head?.status).to.equal(200);
    expect(toHex(head!.rest)).to.equal(toHex(FRAME));
  });

  it('throws UNAVAILABLE on the first 5 bytes when they are not "HTTP/"', () => {
    for (const garbage of ['SSH-2', 'HTTX/', '\u0000\u0000\u0000\u0005\u0092', 'http/']) {
      const error = expectThrows(() => parseResponseHead(latin1(garbage)), 'UNAVAILABLE', 'HTTP/1.x status line');
      expect(error.message).to.not.include(garbage);
    }
  });

  it('waits on fewer than 5 bytes even if they are garbage', () => {
    expect(parseResponseHead(latin1('SSH-'))).to.equal(undefined);
    expect(parseResponseHead(hex(''))).to.equal(undefined);
  });

  it('throws UNAVAILABLE for a complete head whose status line is not HTTP/1.x', () => {
    for (const head of ['HTTP/2 200\r\n\r\n', 'HTTP/1.2 200 OK\r\n\r\n', 'HTTP/1.0 20 OK\r\n\r\n', 'HTTP/1.0 abc OK\r\n\r\n',
      'HTTP/1.0  200 OK\r\n\r\n', 'HTTP/1.0 2000\r\n\r\n', 'hello\n\n']) {
      expectThrows(() => parseResponseHead(latin1(head)), 'UNAVAILABLE', 'HTTP/1.x status line');
    }
  });
});

describe('handshake regressions', () => {
  it('refuses CR or LF in the host', () => {
    for (const host of ['h:1\r\nX-Evil: 1', 'h\nX-Evil: 1', 'h\u010d\u010aX-Evil: 1']) {
      expectThrows(() => encodeConnectRequest('/_rpc', host), 'INVALID_ARGUMENT');
    }
  });

  it('refuses path chars that latin1 turns into CR LF, and control chars', () => {
    for (const path of ['/a\u010d\u010aEvil:1', '/a\u0000b', '/a\u007fb']) {
      expectThrows(() => encodeConnectRequest(path, 'h'), 'INVALID_ARGUMENT');
    }
  });

  it('throws UNAVAILABLE for a complete head of maxHeadSize + 1 bytes', () => {
    const start = 'HTTP/1.0 200 Connected\r\nX-Pad: ';
    const head = Buffer.from(start + 'a'.repeat(101 - start.length - 4) + '\r\n\r\n', 'latin1');
    expect(head.length).to.equal(101);
    expectThrows(() => parseResponseHead(head, 100), 'UNAVAILABLE', 'passed 100 bytes');
  });

  it('accepts a complete head of exactly maxHeadSize bytes', () => {
    const start = 'HTTP/1.0 200 Connected\r\nX-Pad: ';
    const head = Buffer.from(start + 'a'.repeat(100 - start.length - 4) + '\r\n\r\n', 'latin1');
    expect(parseResponseHead(head, 100)?.status).to.equal(200);
  });
});

describe('encodeUpgradeRequest', () => {
  it('writes GET <path> HTTP/1.1, Host, the headers, then Connection: Upgrade and Upgrade: tunnelrpc', () => {
    expect(encodeUpgradeRequest('/_rpc', 'h:1', { Authorization: 'x' }).toString('latin1')).to.equal(
      'GET /_rpc HTTP/1.1\r\nHost: h:1\r\nAuthorization: x\r\nConnection: Upgrade\r\nUpgrade: tunnelrpc\r\n\r\n',
    );
  });

  it("drops a caller's Connection and Upgrade headers in any case", () => {
    const text = encodeUpgradeRequest('/_rpc', 'h', { connection: 'close', UPGRADE: 'websocket', 'X-A': '1' }).toString('latin1');
    expect(text).to.equal('GET /_rpc HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nConnection: Upgrade\r\nUpgrade: tunnelrpc\r\n\r\n');
  });

  it('refuses a path with a space and a header value with CR LF, as encodeConnectRequest does', () => {
    expectThrows(() => encodeUpgradeRequest('/a b', 'h'), 'INVALID_ARGUMENT', 'RPC path');
    expectThrows(() => encodeUpgradeRequest('/_rpc', 'h', { 'X-T': 'a\r\nEvil: 1' }), 'INVALID_ARGUMENT', '"X-T"');
  });
});

describe('SWITCHING_RESPONSE', () => {
  it('is the 101 head of PROTOCOL.md 2.5, and parseResponseHead reads it with the frame behind it', () => {
    expect(SWITCHING_RESPONSE).to.equal('HTTP/1.1 101 Switching Protocols\r\nUpgrade: tunnelrpc\r\nConnection: Upgrade\r\n\r\n');
    expect(Buffer.byteLength(SWITCHING_RESPONSE)).to.equal(77);
    const head = parseResponseHead(Buffer.concat([latin1(SWITCHING_RESPONSE), FRAME]));
    expect(head?.status).to.equal(101);
    expect(head?.headers['upgrade']).to.equal(UPGRADE_TOKEN);
    expect(toHex(head!.rest)).to.equal(toHex(FRAME));
  });
});

describe('encodeProxyConnectRequest', () => {
  it('writes CONNECT host:port HTTP/1.1 in authority form with Host and Proxy-Authorization', () => {
    expect(encodeProxyConnectRequest('example.com:8080', { 'Proxy-Authorization': 'Basic dTpw' }).toString('latin1')).to.equal(
      'CONNECT example.com:8080 HTTP/1.1\r\nHost: example.com:8080\r\nProxy-Authorization: Basic dTpw\r\n\r\n',
    );
    expect(encodeProxyConnectRequest('[::1]:80').toString('latin1')).to.equal('CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n');
  });

  it('refuses a target without a port or with a space', () => {
    expectThrows(() => encodeProxyConnectRequest('example.com'), 'INVALID_ARGUMENT', 'host:port');
    expectThrows(() => encodeProxyConnectRequest('a b:1'), 'INVALID_ARGUMENT', 'host:port');
  });
});

describe('isTunnelrpcReply', () => {
  it('tells a refusal with the Tunnelrpc-Server header (any case) from one without', () => {
    expect(SERVER_MARKER_HEADER).to.equal('Tunnelrpc-Server');
    expect(SERVER_MARKER_VALUE).to.equal('wire-v1');
    expect(isTunnelrpcReply(parseResponseHead(latin1('HTTP/1.0 403 Forbidden\r\ntunnelrpc-server: wire-v1\r\n\r\n'))!)).to.equal(true);
    expect(isTunnelrpcReply(parseResponseHead(latin1('HTTP/1.1 400 Bad request\r\nContent-Length: 0\r\n\r\n'))!)).to.equal(false);
  });
});
