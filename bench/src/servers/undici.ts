/**
 * HTTP/1.1 keep-alive server for the undici peer: node:http, `POST /echo` answers 200 with the request body,
 * application/octet-stream with a Content-Length. Default server options.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { failServer, serveControl } from '../server-control.js';

async function main(): Promise<void> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  serveControl(port, {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

main().catch(failServer);
