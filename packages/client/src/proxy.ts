/**
 * Through a forward proxy: `CONNECT host:port HTTP/1.1` to the proxy (RFC 9110 section 9.3.6), and on its 2xx a
 * socket to the target with every byte that came behind the proxy's head put back (grpc-js http_proxy.ts keeps them
 * too). Any other answer fails with an error that names the proxy and its status, never the server: the tunnelrpc
 * handshake has not started yet (undici proxy-agent.js fails likewise with the proxy's status).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { RpcError, escapePeerText, type ErrorCode } from '@tunnelrpc/protocol';
import { codeFromHttpStatus, encodeProxyConnectRequest, parseResponseHead, type ResponseHead } from '@tunnelrpc/protocol/internal';
import type { ProxyChoice, ProxyTarget } from './proxy-env.js';

const MAX_BODY_SHOWN = 200;

/**
 * openProxyTunnel resolves with a socket to `target` through `proxy`, or rejects with an RpcError naming the proxy.
 * `timeout` (ms) bounds the whole exchange. @internal
 */
export function openProxyTunnel(proxy: ProxyChoice, target: ProxyTarget, timeout: number, maxHeadSize: number): Promise<Socket> {
  const authority = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  const where = `proxy ${proxy.display} (${proxy.source})`;
  return new Promise((resolve, reject) => {
    let request: Buffer;
    try {
      request = encodeProxyConnectRequest(authority, proxy.authorization === undefined ? {} : { 'Proxy-Authorization': proxy.authorization });
    } catch (error) {
      reject(RpcError.from(error, 'INVALID_ARGUMENT'));
      return;
    }
    const socket = netConnect({ host: proxy.host, port: proxy.port });
    socket.write(request);
    let received: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (outcome: RpcError | Socket): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (outcome instanceof RpcError) {
        socket.destroy();
        reject(outcome);
      } else {
        resolve(outcome);
      }
    };
    const timer = setTimeout(() => {
      finish(new RpcError('UNAVAILABLE', `${where} did not answer CONNECT ${authority} within handshakeTimeout ${timeout} ms`, { proxy: proxy.display }));
    }, timeout);
    const onError = (error: Error): void => {
      const errno = (error as NodeJS.ErrnoException).code;
      finish(new RpcError('UNAVAILABLE', `cannot connect to ${where}: ${errno ?? error.message}; check the proxy URL, or unset it to dial directly`, { proxy: proxy.display, errno }, { cause: error }));
    };
    const onClose = (): void => {
      finish(new RpcError('UNAVAILABLE', `${where} closed the connection before answering CONNECT ${authority}`, { proxy: proxy.display }));
    };
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      let head: ResponseHead | undefined;
      try {
        head = parseResponseHead(received, maxHeadSize);
      } catch (error) {
        finish(new RpcError('UNAVAILABLE', `${where} answered CONNECT ${authority} with something that is not an HTTP reply; is it an HTTP proxy?`, { proxy: proxy.display }, { cause: error }));
        return;
      }
      if (head === undefined) return;
      if (head.status >= 200 && head.status < 300) {
        // Stop the flow before handing on: bytes behind the 2xx are the target's and must reach the next reader.
        socket.pause();
        finish(socket);
        if (head.rest.length > 0) socket.unshift(head.rest);
        return;
      }
      finish(proxyRefusal(head, where, authority, proxy));
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

// The proxy's refusal, with what to do about it; the code follows the status as for a server (PROTOCOL.md 2.4).
function proxyRefusal(head: ResponseHead, where: string, authority: string, proxy: ProxyChoice): RpcError {
  const status = head.status;
  const body = head.rest.subarray(0, MAX_BODY_SHOWN).toString('utf8');
  let code: ErrorCode = codeFromHttpStatus(status);
  let hint: string;
  switch (status) {
    case 407: {
      code = 'UNAUTHENTICATED';
      const scheme = escapePeerText((head.headers['proxy-authenticate'] ?? '').split(/\s/)[0] ?? '', 40);
      const asks = scheme === '' ? '' : ` (it asks for ${scheme} authentication)`;
      hint = proxy.authorization === undefined
        ? `${asks}; put the credentials in the proxy URL: http://user:password@host:port`
        : `${asks}; it refused the credentials in the proxy URL`;
      break;
    }
    case 401:
      hint = proxy.authorization === undefined ? '; put the credentials in the proxy URL: http://user:password@host:port' : '; it refused the credentials in the proxy URL';
      break;
    case 403:
      hint = `; the proxy does not allow CONNECT to ${authority} (squid allows only port 443 by default: allow this port in its ACLs)`;
      break;
    case 502:
    case 503:
    case 504:
      hint = `; the proxy could not reach ${authority}: is the server up, and reachable from the proxy?`;
      break;
    default:
      hint = '';
  }
  return new RpcError(code, `${where} refused CONNECT ${authority} with HTTP ${status} ${escapePeerText(head.reason, 80)}${hint}`, { proxy: proxy.display, status, body });
}
