/**
 * HTTP/1.1 keep-alive server for the undici peer: node:http, `POST /echo` answers 200 with the request body, with
 * a Content-Length. An application/octet-stream body (the bytes payloads) comes back as it is; an application/json
 * body (strings and objects) is parsed and serialized again, as a JSON service would. Default server options.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { failServer, serveControl } from '../server-control.js';

async function main(): Promise<void> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const json = req.headers['content-type'] === 'application/json';
      const body = json ? Buffer.from(JSON.stringify(JSON.parse(raw.toString('utf8')))) : raw;
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/octet-stream', 'content-length': body.length });
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
