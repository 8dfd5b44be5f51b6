/**
 * The stream memory attack, as it was measured from outside: client streams whose handler never reads, each granted
 * its window of 32 messages, each message 131,000 empty maps (128 KiB on the wire, about 8 MiB once decoded). With
 * default options the server's heap must stay under the documented sum (SECURITY.md: decoded values held are at
 * most maxItemsInFlight x 64 bytes, 256 MiB) instead of growing by a gigabyte per connection. The server runs in its
 * own process (test/fixtures/stream-flood-server.ts), which samples its own heap.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { MessageType, encodeMessage, type CreditMessage, type Message, type ResponseMessage } from '@tunnelrpc/protocol/internal';
import { Cleanup } from '../helpers/cleanup.js';
import { spawnNode, waitForLine } from '../helpers/processes.js';
import { RawTunnel } from '@tunnelrpc/test-kit';

const MiB = 1024 * 1024;

async function nextOf(raw: RawTunnel, type: number): Promise<Message> {
  for (;;) {
    const message = await raw.next();
    if (message.type === type) return message;
  }
}

describe('Stream memory under attack, default options', function () {
  this.timeout(120_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('keeps the heap under the documented bound while two peers fill their stream windows with 8 MiB messages', async () => {
    const server = spawnNode(['test/dist/fixtures/stream-flood-server.js'], true);
    cleanup.defer(() => void server.kill('SIGKILL'));
    const port = Number((JSON.parse((await waitForLine(server, /^\{"port":\d+\}$/))[0]) as { port: number }).port);
    const heavy = encodeMessage({ type: MessageType.StreamMessage, id: 0, message: Array.from({ length: 131_000 }, () => ({})) });
    const ended: string[] = [];
    for (let connection = 0; connection < 2; connection++) {
      const raw = cleanup.add(await RawTunnel.open(port), (tunnel) => tunnel.destroy());
      const ids = [1, 3, 5, 7];
      for (const id of ids) raw.write(encodeMessage({ type: MessageType.Request, id, method: 'Sink.hold', params: undefined, meta: { timeout: 60_000 } }));
      const grants = new Map<number, number>();
      while (grants.size < ids.length) {
        const grant = (await nextOf(raw, MessageType.Credit)) as CreditMessage;
        grants.set(grant.id, grant.n);
      }
      for (const id of ids) {
        // The same frame with the stream's id written in: [4, id, message] with id a positive fixint at byte 6.
        const frame = Buffer.from(heavy);
        frame[6] = id;
        for (let i = 0; i < grants.get(id)!; i++) raw.write(frame);
      }
      for (let i = 0; i < ids.length; i++) ended.push(((await nextOf(raw, MessageType.Response)) as ResponseMessage).error?.code ?? 'OK');
    }
    expect(ended.every((code) => code === 'RESOURCE_EXHAUSTED'), ended.join(', ')).to.equal(true);
    const lines = createInterface({ input: server.stdout! });
    const report = new Promise<string>((resolve) => lines.on('line', (line) => line.includes('peakHeap') && resolve(line)));
    server.stdin!.write('report\n');
    const { baseHeap, peakHeap } = JSON.parse(await report) as { baseHeap: number; peakHeap: number };
    await once(server, 'exit');
    const grown = peakHeap - baseHeap;
    console.log(`      [stream flood] heap grew ${(grown / MiB).toFixed(0)} MiB at its peak (2 peers x 4 streams x 32 messages of 131,000 maps)`);
    // Decoded values held are bounded at 4,194,304 x 64 B = 256 MiB; one frame being decoded and garbage not yet
    // collected come on top. Without the bound this attack held about 2 GiB.
    expect(grown).to.be.below(768 * MiB);
  });
});
