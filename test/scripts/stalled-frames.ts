/**
 * stalled-frames: an attacker in its own process (so that its write buffers do not count in the server's memory
 * figures). Opens COUNT tunnels to 127.0.0.1:PORT; on each, sends a frame header declaring DECLARED bytes and then
 * SENT bytes of it, and stalls. Prints "stalled COUNT" once every tunnel has written, and exits when they close.
 *
 *   node test/dist/scripts/stalled-frames.js PORT COUNT DECLARED SENT
 */
import { connect } from 'node:net';

const [port, count, declared, sent] = process.argv.slice(2).map(Number) as [number, number, number, number];
let written = 0;
let closed = 0;
for (let i = 0; i < count; i++) {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    if (++closed === count) process.exit(0);
  });
  socket.on('connect', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(declared);
    socket.write(Buffer.concat([Buffer.from(`CONNECT /_rpc HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\n\r\n`), header, Buffer.alloc(sent)]));
    if (++written === count) console.log(`stalled ${count}`);
  });
}
