import { expect } from 'chai';
import { FrameBatcher, FrameDecoder, decodeMessage, encodePayload, encodePayloadParts, payloadLength } from '@tunnelrpc/protocol/internal';

// A sink that records every write, as a socket would receive them.
function recordingSink(): { writes: Uint8Array[]; sink: { write(buffer: Uint8Array): void } } {
  const writes: Uint8Array[] = [];
  return { writes, sink: { write: (buffer) => void writes.push(buffer) } };
}

function framesOf(writes: Uint8Array[]): Buffer[] {
  const decoder = new FrameDecoder();
  return writes.flatMap((chunk) => decoder.push(chunk));
}

describe('FrameBatcher', () => {
  it('writes the small frames of one tick as one buffer, in order', async () => {
    const { writes, sink } = recordingSink();
    const batcher = new FrameBatcher(sink);
    for (let id = 1; id <= 5; id++) batcher.push(encodePayload({ type: 1, id, result: id * 10 }));
    expect(writes).to.have.length(0);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(writes).to.have.length(1);
    expect(framesOf(writes).map((payload) => decodeMessage(payload))).to.deep.equal([1, 2, 3, 4, 5].map((id) => ({ type: 1, id, result: id * 10 })));
  });

  it('flushes at 32 frames without waiting for the end of the tick', () => {
    const { writes, sink } = recordingSink();
    const batcher = new FrameBatcher(sink);
    for (let id = 1; id <= 33; id++) batcher.push(encodePayload({ type: 1, id, result: null }));
    expect(writes).to.have.length(1);
    expect(framesOf(writes)).to.have.length(32);
    expect(batcher.queuedBytes).to.be.greaterThan(0);
  });

  it('sends a large byte array from the caller memory, uncopied, after the frames queued before it', () => {
    const { writes, sink } = recordingSink();
    const batcher = new FrameBatcher(sink);
    batcher.push(encodePayload({ type: 1, id: 1, result: 'small' }));
    const big = Buffer.alloc(40 * 1024, 3);
    const parts = encodePayloadParts({ type: 1, id: 2, result: big });
    expect(Array.isArray(parts)).to.equal(true);
    expect((parts as readonly Uint8Array[]).includes(big)).to.equal(true);
    batcher.push(parts);
    expect(writes.includes(big)).to.equal(true);
    const decoded = framesOf(writes).map((payload) => decodeMessage(payload));
    expect(decoded).to.deep.equal([
      { type: 1, id: 1, result: 'small' },
      { type: 1, id: 2, result: big },
    ]);
    expect(payloadLength(parts)).to.equal(Buffer.concat(parts as readonly Uint8Array[]).length);
  });

  it('keeps a request whose params hold a large byte array between envelope parts decodable', () => {
    const big = Buffer.alloc(20 * 1024, 9);
    const parts = encodePayloadParts({ type: 0, id: 7, method: 'Blob.put', params: big, meta: { timeout: 5000 } });
    const whole = Buffer.concat(parts as readonly Uint8Array[]);
    expect(decodeMessage(whole)).to.deep.equal({ type: 0, id: 7, method: 'Blob.put', params: big, meta: { timeout: 5000 } });
  });
});
