/** The metrics endpoint: a path on the user's own http.Server, in front of the listeners it already had. */
import type { IncomingMessage, Server as HttpServer, ServerResponse, RequestListener } from 'node:http';
import type { Registry } from 'prom-client';
import { RpcError } from '@tunnelrpc/protocol';

/**
 * serveMetrics answers GET/HEAD `path` on `http` with the registry's exposition; every other request goes to the
 * listeners the server had. @internal
 */
export function serveMetrics(http: HttpServer, registry: Registry, path: string): void {
  if (!path.startsWith('/')) throw new RpcError('INVALID_ARGUMENT', `serve(): path ${JSON.stringify(path)} must start with "/"`);
  const listeners = http.listeners('request') as RequestListener[];
  http.removeAllListeners('request');
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    const query = url.indexOf('?');
    if ((query === -1 ? url : url.slice(0, query)) !== path) {
      if (listeners.length === 0) {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('404 not found\n');
        return;
      }
      for (const listener of listeners) listener.call(http, req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('405 use GET\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        // A collect callback of the user's registry failed: say so, never crash the server.
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`500 collecting metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    ).catch(() => {
      // Writing the answer failed (the scraper went away): nothing left to tell it.
      res.destroy();
    });
  });
}
