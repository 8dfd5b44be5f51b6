/**
 * Ceiling server: a bare net server that decodes each [id, payload] frame with msgpackr and writes back
 * [id, payload] through the capped coalescing writer of ceiling-wire.ts. No envelope checks, no limits.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { CeilingReader, CeilingWriter, decodeCeilingFrame, encodeCeilingFrame } from '../ceiling-wire.js';
import { failServer, serveControl } from '../server-control.js';

async function main(): Promise<void> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const reader = new CeilingReader();
    const writer = new CeilingWriter(socket);
    const onFrame = (body: Buffer): void => {
      const [id, payload] = decodeCeilingFrame(body);
      writer.write(encodeCeilingFrame(id, payload));
    };
    socket.on('data', (chunk: Buffer) => reader.push(chunk, onFrame));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  serveControl(port, {
    connections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  });
}

main().catch(failServer);
