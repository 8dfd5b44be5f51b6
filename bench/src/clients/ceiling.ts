/**
 * Ceiling client: one net socket, ids in a Map of callbacks, frames through the capped coalescing writer, every
 * frame decoded in place (ceiling-wire.ts).
 */
import { connect } from 'node:net';
import { CeilingReader, CeilingWriter, encodeCeilingFrame, type CeilingMessage } from '../ceiling-wire.js';
import { failClient, runClosedLoop } from '../closed-loop.js';

type Done = (error: unknown, echoed?: unknown) => void;

runClosedLoop(async ({ host, port }) => {
  const socket = connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.setNoDelay(true);
  const pending = new Map<number, Done>();
  const reader = new CeilingReader();
  const writer = new CeilingWriter(socket);
  let nextId = 1;
  const onFrame = ([id, value]: CeilingMessage): void => {
    const done = pending.get(id);
    pending.delete(id);
    done?.(undefined, value);
  };
  socket.on('data', (chunk: Buffer) => reader.push(chunk, onFrame));
  const failAll = (error: unknown): void => {
    for (const done of pending.values()) done(error ?? new Error('connection closed'));
    pending.clear();
  };
  socket.on('error', failAll);
  socket.on('close', () => failAll(new Error('connection closed')));
  return {
    call(payload, done) {
      if (socket.destroyed) {
        done(new Error('connection closed'));
        return;
      }
      const id = nextId;
      nextId = nextId === 0x7fff_ffff ? 1 : nextId + 1;
      pending.set(id, done);
      writer.write(encodeCeilingFrame(id, payload));
    },
    close: async () => {
      socket.end();
    },
  };
}).catch(failClient);
