/**
 * connect() through a forward proxy played by hand over real 127.0.0.1 sockets: the CONNECT host:port the client
 * sends, bytes behind the proxy's 2xx kept (even the server's own 200 and a frame, in the same write), and refusals
 * that name the proxy and its status, never the server.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect } from '@tunnelrpc/client';
import { CONNECTED_RESPONSE, encodeMessage } from '@tunnelrpc/protocol/internal';
import { expectRejects } from '@tunnelrpc/test-kit';
import { cleanup as cleanupClients, freePort, track } from './helpers.js';

const PING_42 = encodeMessage({ type: 6, data: 42 });

/** HandProxy accepts one connection at a time and hands the test its first head and the socket. */
class HandProxy {
  readonly server: Server;
  readonly #waiting: Array<(value: { head: string; socket: Socket; after: Buffer }) => void> = [];
  constructor() {
    this.server = createServer((socket) => {
      socket.on('error', () => {});
      let received = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        socket.pause();
        this.#waiting.shift()?.({ head: received.subarray(0, end + 4).toString('latin1'), socket, after: received.subarray(end + 4) });
      };
      socket.on('data', onData);
    });
  }
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  next(): Promise<{ head: string; socket: Socket; after: Buffer }> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}

describe('connect() through a forward proxy', () => {
  const proxies: HandProxy[] = [];
  afterEach(async () => {
    await cleanupClients();
    for (const proxy of proxies.splice(0)) {
      proxy.server.close();
      await once(proxy.server, 'close');
    }
  });
  async function startProxy(): Promise<HandProxy> {
    const proxy = new HandProxy();
    proxies.push(proxy);
    proxy.server.listen(0, '127.0.0.1');
    await once(proxy.server, 'listening');
    return proxy;
  }

  it('sends CONNECT host:port HTTP/1.1 with Proxy-Authorization, then the tunnelrpc CONNECT inside', async () => {
    const proxy = await startProxy();
    const url = proxy.url.replace('http://', 'http://alice:s%3Acret@');
    const connecting = connect('http://rpc.internal:7000/_rpc', { proxy: url, reconnect: false });
    connecting.catch(() => {});
    const { head, socket } = await proxy.next();
    expect(head).to.equal(`CONNECT rpc.internal:7000 HTTP/1.1\r\nHost: rpc.internal:7000\r\nProxy-Authorization: Basic ${Buffer.from('alice:s:cret').toString('base64')}\r\n\r\n`);
    socket.resume();
    socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
    const [inner] = (await once(socket, 'data')) as [Buffer];
    expect(inner.toString('latin1')).to.equal('CONNECT /_rpc HTTP/1.0\r\nHost: rpc.internal:7000\r\n\r\n');
    socket.write(CONNECTED_RESPONSE);
    track(await connecting);
  });

  it("keeps the server's 200 and a frame that came in the same write as the proxy's 200 (grpc-js http_proxy class of bug)", async () => {
    const proxy = await startProxy();
    const connecting = connect('http://127.0.0.1:9/_rpc', { proxy: proxy.url, reconnect: false });
    const { socket } = await proxy.next();
    socket.resume();
    socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 Connection established\r\nVia: hand\r\n\r\n', 'latin1'), Buffer.from(CONNECTED_RESPONSE, 'latin1'), PING_42]));
    track(await connecting);
    // The client answers the ping that came behind both heads: proof it decoded it.
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    while (!Buffer.concat(chunks).includes(Buffer.from(encodeMessage({ type: 7, data: 42 })))) await once(socket, 'data');
  });

  const refusals = [
    { status: 407, reason: 'Proxy Authentication Required', headers: 'Proxy-Authenticate: Basic realm="corp"\r\n', code: 'UNAUTHENTICATED', says: 'it asks for Basic authentication); put the credentials in the proxy URL' },
    { status: 403, reason: 'Forbidden', headers: '', code: 'PERMISSION_DENIED', says: 'the proxy does not allow CONNECT to 127.0.0.1:9' },
    { status: 502, reason: 'Bad Gateway', headers: '', code: 'UNAVAILABLE', says: 'the proxy could not reach 127.0.0.1:9' },
    { status: 503, reason: 'Service Unavailable', headers: '', code: 'UNAVAILABLE', says: 'the proxy could not reach' },
    { status: 504, reason: 'Gateway Timeout', headers: '', code: 'UNAVAILABLE', says: 'the proxy could not reach' },
  ] as const;
  for (const { status, reason, headers, code, says } of refusals) {
    it(`fails ${code} naming the proxy, its status and what to do when the proxy answers ${status}`, async () => {
      const proxy = await startProxy();
      const connecting = connect('http://127.0.0.1:9/_rpc', { proxy: proxy.url, reconnect: false });
      connecting.catch(() => {});
      const { socket } = await proxy.next();
      socket.end(`HTTP/1.1 ${status} ${reason}\r\n${headers}Content-Length: 0\r\n\r\n`);
      const error = await expectRejects(connecting, code, `proxy ${proxy.url} (option proxy) refused CONNECT 127.0.0.1:9 with HTTP ${status} ${reason}`);
      expect(error.message).to.include(says);
      expect(error.message).not.to.include('tunnelrpc server');
      expect(error.data).to.deep.include({ proxy: proxy.url, status });
    });
  }

  it('says the credentials were refused when a 407 answers a CONNECT that carried them', async () => {
    const proxy = await startProxy();
    const connecting = connect('http://127.0.0.1:9/_rpc', { proxy: proxy.url.replace('http://', 'http://u:wrong@'), reconnect: false });
    connecting.catch(() => {});
    const { socket } = await proxy.next();
    socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n');
    await expectRejects(connecting, 'UNAUTHENTICATED', 'it refused the credentials in the proxy URL');
  });

  it('fails UNAVAILABLE naming the proxy when nothing listens there', async () => {
    const port = await freePort();
    await expectRejects(connect('http://127.0.0.1:9/_rpc', { proxy: `http://127.0.0.1:${port}`, reconnect: false }), 'UNAVAILABLE', `cannot connect to proxy http://127.0.0.1:${port} (option proxy): ECONNREFUSED`);
  });

  it('fails UNAVAILABLE when the proxy closes before answering, and when it does not speak HTTP', async () => {
    const proxy = await startProxy();
    const first = connect('http://127.0.0.1:9/_rpc', { proxy: proxy.url, reconnect: false });
    first.catch(() => {});
    (await proxy.next()).socket.destroy();
    await expectRejects(first, 'UNAVAILABLE', 'closed the connection before answering CONNECT 127.0.0.1:9');
    const second = connect('http://127.0.0.1:9/_rpc', { proxy: proxy.url, reconnect: false });
    second.catch(() => {});
    (await proxy.next()).socket.end('SSH-2.0-OpenSSH\r\n\r\n');
    await expectRejects(second, 'UNAVAILABLE', 'not an HTTP reply');
  });

  it('reads http_proxy from the environment, and no_proxy skips it', async () => {
    const proxy = await startProxy();
    const saved = { http_proxy: process.env['http_proxy'], no_proxy: process.env['no_proxy'] };
    try {
      process.env['http_proxy'] = proxy.url;
      delete process.env['no_proxy'];
      const connecting = connect('http://127.0.0.1:9/_rpc', { reconnect: false });
      connecting.catch(() => {});
      const { socket } = await proxy.next();
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      await expectRejects(connecting, 'PERMISSION_DENIED', `proxy ${proxy.url} (env http_proxy) refused`);
      process.env['no_proxy'] = '127.0.0.1';
      // Directly to port 9, where nothing listens: the proxy is not asked.
      await expectRejects(connect('http://127.0.0.1:9/_rpc', { reconnect: false }), 'UNAVAILABLE', 'cannot connect to http://127.0.0.1:9/_rpc');
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('refuses a proxy option that is not a string or false with INVALID_ARGUMENT', async () => {
    await expectRejects(connect('http://127.0.0.1:9/_rpc', { proxy: 3128 as unknown as string }), 'INVALID_ARGUMENT', 'option proxy must be a URL string');
  });
});
