/**
 * Ceiling server: a bare net server that decodes each [id, value] frame in place with msgpackr and writes back
 * [id, value] through the capped coalescing writer of ceiling-wire.ts. No envelope checks, no limits.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { CeilingReader, CeilingWriter, encodeCeilingFrame, type CeilingMessage } from '../ceiling-wire.js';
import { failServer, serveControl } from '../server-control.js';

async function main(): Promise<void> {
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const reader = new CeilingReader();
    const writer = new CeilingWriter(socket);
    const onFrame = ([id, value]: CeilingMessage): void => {
      writer.write(encodeCeilingFrame(id, value));
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
