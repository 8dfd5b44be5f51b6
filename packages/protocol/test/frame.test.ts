import { expect } from 'chai';
import { DEFAULT_MAX_FRAME_SIZE, RpcError } from '@tunnelrpc/protocol';
import { FRAME_HEADER_SIZE, FrameDecoder, encodeFrame, frameTooLarge } from '@tunnelrpc/protocol/internal';
import { expectThrows, hex, toHex } from '@tunnelrpc/test-kit';

/** payload returns `length` bytes that differ from frame to frame, so a mix-up between frames shows. */
function payload(length: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = (seed * 31 + i * 7) & 0xff;
  return bytes;
}

/** feed pushes each chunk in order and returns every payload completed, as hex. */
function feed(decoder: FrameDecoder, chunks: readonly Uint8Array[]): string[] {
  const out: string[] = [];
  for (const chunk of chunks) for (const frame of decoder.push(chunk)) out.push(toHex(frame));
  return out;
}

/** bytesOneByOne cuts a buffer into 1-byte chunks. */
function bytesOneByOne(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
  return chunks;
}

// Four frames whose payloads are 1, 2, 5 and 130 bytes: small enough to split at every offset.
const PAYLOADS = [payload(1, 1), payload(2, 2), payload(5, 3), payload(130, 4)];
const STREAM = Buffer.concat(PAYLOADS.map((p) => encodeFrame(p)));
const EXPECTED = PAYLOADS.map((p) => toHex(p));

describe('encodeFrame', () => {
  it('prefixes the payload with its length as a big-endian uint32', () => {
    const frame = encodeFrame(hex('92 06 c0'));
    expect(toHex(frame)).to.equal(toHex(hex(
      '00 00 00 03' + // length 3
      '92 06 c0', //     payload: [6, nil]
    )));
  });

  it('writes every byte of the length prefix', () => {
    const frame = encodeFrame(Buffer.alloc(0x010203));
    expect(toHex(frame.subarray(0, FRAME_HEADER_SIZE))).to.equal('00 01 02 03');
    expect(frame.length).to.equal(FRAME_HEADER_SIZE + 0x010203);
  });
});

describe('frameTooLarge', () => {
  it('builds a RESOURCE_EXHAUSTED error naming the size, the limit and the fix', () => {
    const error = frameTooLarge(9437184, 8388608, 'received');
    expect(error).to.be.instanceOf(RpcError);
    expect(error.code).to.equal('RESOURCE_EXHAUSTED');
    expect(error.data).to.deep.equal({ size: 9437184, maxFrameSize: 8388608 });
    expect(error.message).to.include('9437184').and.include('maxFrameSize 8388608').and.include('raise maxFrameSize');
    expect(error.message).to.include('received');
  });

  it('says "to send" for a frame this side was about to write', () => {
    expect(frameTooLarge(20, 10, 'sent').message).to.include('to send').and.not.include('received');
  });
});

describe('FrameDecoder', () => {
  describe('#push', () => {
    it('decodes several frames fed as one chunk', () => {
      expect(feed(new FrameDecoder(), [STREAM])).to.deep.equal(EXPECTED);
    });

    it('decodes a stream split in two at every byte offset', () => {
      for (let at = 0; at <= STREAM.length; at++) {
        const decoded = feed(new FrameDecoder(), [STREAM.subarray(0, at), STREAM.subarray(at)]);
        expect(decoded, `split at ${at}`).to.deep.equal(EXPECTED);
      }
    });

    it('decodes a stream fed one byte at a time', () => {
      expect(feed(new FrameDecoder(), bytesOneByOne(STREAM))).to.deep.equal(EXPECTED);
    });

    it('decodes thousands of frames that arrive in one chunk', () => {
      const payloads = Array.from({ length: 5000 }, (_, i) => payload(1 + (i % 17), i));
      const chunk = Buffer.concat(payloads.map((p) => encodeFrame(p)));
      const decoded = new FrameDecoder().push(chunk);
      expect(decoded.length).to.equal(5000);
      expect(decoded.map((p) => toHex(p))).to.deep.equal(payloads.map((p) => toHex(p)));
    });

    it('decodes a frame that spans three chunks, the header itself split', () => {
      const decoder = new FrameDecoder();
      const body = payload(10, 9);
      const frame = encodeFrame(body);
      expect(decoder.push(frame.subarray(0, 2))).to.deep.equal([]); // half the header
      expect(decoder.push(frame.subarray(2, 9))).to.deep.equal([]); // rest of header, 5 payload bytes
      const out = decoder.push(frame.subarray(9)); // last 5 payload bytes
      expect(out.map((p) => toHex(p))).to.deep.equal([toHex(body)]);
    });

    it('decodes the end of one frame and the start of the next from the same chunk', () => {
      const decoder = new FrameDecoder();
      const a = payload(6, 1);
      const b = payload(6, 2);
      const stream = Buffer.concat([encodeFrame(a), encodeFrame(b)]);
      expect(feed(decoder, [stream.subarray(0, 7)])).to.deep.equal([]);
      expect(feed(decoder, [stream.subarray(7, 13)])).to.deep.equal([toHex(a)]);
      expect(feed(decoder, [stream.subarray(13)])).to.deep.equal([toHex(b)]);
    });

    it('decodes a 64 KiB frame fed one byte at a time', () => {
      const body = payload(64 * 1024, 5);
      const decoder = new FrameDecoder();
      const frame = encodeFrame(body);
      const out: Buffer[] = [];
      let early = 0; // payloads completed before the last byte: must stay 0
      for (let i = 0; i < frame.length; i++) {
        const completed = decoder.push(frame.subarray(i, i + 1));
        if (i < frame.length - 1) early += completed.length;
        out.push(...completed);
      }
      expect(early).to.equal(0);
      expect(out.length).to.equal(1);
      expect(Buffer.compare(out[0]!, body)).to.equal(0);
      expect(decoder.bufferedBytes).to.equal(0);
    });

    it('decodes a frame larger than 64 KiB fed in uneven chunks', () => {
      const body = payload(300_000, 6);
      const frame = encodeFrame(body);
      const chunks: Buffer[] = [];
      for (let at = 0, size = 1; at < frame.length; at += size, size = (size * 3) % 40_000 + 1) {
        chunks.push(frame.subarray(at, at + size));
      }
      const decoder = new FrameDecoder();
      const out = chunks.flatMap((chunk) => decoder.push(chunk));
      expect(out.length).to.equal(1);
      expect(Buffer.compare(out[0]!, body)).to.equal(0);
    });

    it('accepts a Uint8Array that is a view at an offset into a larger ArrayBuffer', () => {
      const backing = new Uint8Array(32).fill(0xee);
      backing.set(hex('00 00 00 02 aa bb'), 10);
      const view = backing.subarray(10, 16);
      const out = new FrameDecoder().push(view);
      expect(out.map((p) => toHex(p))).to.deep.equal(['aa bb']);
    });

    it('leaves returned payloads intact while later frames are decoded', () => {
      const decoder = new FrameDecoder();
      const a = payload(100, 1);
      const b = payload(100, 2);
      const frameA = encodeFrame(a);
      expect(decoder.push(frameA.subarray(0, 50))).to.deep.equal([]);
      const [completed] = decoder.push(frameA.subarray(50));
      expect(completed).to.not.equal(undefined);
      const kept = Buffer.from(completed!);
      feed(decoder, bytesOneByOne(encodeFrame(b)));
      expect(toHex(completed!)).to.equal(toHex(kept));
      expect(toHex(completed!)).to.equal(toHex(a));
    });

    it('accepts a frame of exactly maxFrameSize', () => {
      const decoder = new FrameDecoder(16);
      const body = payload(16, 7);
      expect(feed(decoder, [encodeFrame(body)])).to.deep.equal([toHex(body)]);
    });

    it('accepts a frame of exactly the default maxFrameSize (8 MiB)', () => {
      const body = payload(DEFAULT_MAX_FRAME_SIZE, 8);
      const out = new FrameDecoder().push(encodeFrame(body));
      expect(out.length).to.equal(1);
      expect(Buffer.compare(out[0]!, body)).to.equal(0);
    });

    it('fails on the 4 header bytes alone when the length is maxFrameSize + 1', () => {
      const decoder = new FrameDecoder(16);
      const error = expectThrows(() => decoder.push(hex('00 00 00 11')), 'RESOURCE_EXHAUSTED', 'maxFrameSize 16');
      expect(error.data).to.deep.equal({ size: 17, maxFrameSize: 16 });
    });

    it('fails on the 4 header bytes alone when the length is the default maxFrameSize + 1', () => {
      const error = expectThrows(
        () => new FrameDecoder().push(hex('00 80 00 01')), // 8388609
        'RESOURCE_EXHAUSTED',
        '8388609',
      );
      expect(error.data).to.deep.equal({ size: 8388609, maxFrameSize: 8388608 });
    });

    it('fails on the header ff ff ff ff (4 GiB - 1)', () => {
      const error = expectThrows(() => new FrameDecoder().push(hex('ff ff ff ff')), 'RESOURCE_EXHAUSTED', '4294967295');
      expect(error.data).to.deep.equal({ size: 4294967295, maxFrameSize: DEFAULT_MAX_FRAME_SIZE });
    });

    it('fails on the header 80 00 00 00 (2 GiB)', () => {
      const error = expectThrows(() => new FrameDecoder().push(hex('80 00 00 00')), 'RESOURCE_EXHAUSTED', '2147483648');
      expect(error.data).to.deep.equal({ size: 2147483648, maxFrameSize: DEFAULT_MAX_FRAME_SIZE });
    });

    it('fails as soon as the fourth byte of an oversized header arrives one byte at a time', () => {
      const decoder = new FrameDecoder(16);
      expect(decoder.push(hex('00'))).to.deep.equal([]);
      expect(decoder.push(hex('00'))).to.deep.equal([]);
      expect(decoder.push(hex('00'))).to.deep.equal([]);
      const error = expectThrows(() => decoder.push(hex('11')), 'RESOURCE_EXHAUSTED');
      expect(error.data).to.deep.equal({ size: 17, maxFrameSize: 16 });
    });

    it('fails on an oversized header that follows a complete frame in the same chunk', () => {
      const decoder = new FrameDecoder(16);
      const chunk = hex(
        '00 00 00 01 c0' + // frame 1: length 1, nil
        '00 00 01 00', //     frame 2: length 256 > 16, no payload yet
      );
      expectThrows(() => decoder.push(chunk), 'RESOURCE_EXHAUSTED', 'frame of 256 bytes');
    });

    it('fails on a zero-length frame with a protocol violation', () => {
      expectThrows(() => new FrameDecoder().push(hex('00 00 00 00')), 'INTERNAL', 'protocol violation');
    });

    it('fails on a zero-length frame whose header arrives in two chunks', () => {
      const decoder = new FrameDecoder();
      expect(decoder.push(hex('00 00'))).to.deep.equal([]);
      expectThrows(() => decoder.push(hex('00 00')), 'INTERNAL', 'zero-length frame');
    });
  });

  describe('#bufferedBytes', () => {
    it('reports 0 and inFrame false for a fresh decoder', () => {
      const decoder = new FrameDecoder();
      expect(decoder.bufferedBytes).to.equal(0);
      expect(decoder.inFrame).to.equal(false);
    });

    it('counts a partial header', () => {
      const decoder = new FrameDecoder();
      decoder.push(hex('00 00'));
      expect(decoder.bufferedBytes).to.equal(2);
      expect(decoder.inFrame).to.equal(true);
    });

    it('counts the header and the payload bytes of a partial frame', () => {
      const decoder = new FrameDecoder();
      decoder.push(hex('00 00 00 08 01 02 03')); // length 8, 3 of 8 payload bytes
      expect(decoder.bufferedBytes).to.equal(7);
      expect(decoder.inFrame).to.equal(true);
      decoder.push(hex('04 05'));
      expect(decoder.bufferedBytes).to.equal(9);
    });

    it('returns to 0 once the frame completes', () => {
      const decoder = new FrameDecoder();
      decoder.push(hex('00 00 00 02 01'));
      decoder.push(hex('02'));
      expect(decoder.bufferedBytes).to.equal(0);
      expect(decoder.inFrame).to.equal(false);
    });

    it('counts only the unfinished frame after complete ones in the same chunk', () => {
      const decoder = new FrameDecoder();
      decoder.push(hex(
        '00 00 00 01 c0' + // a complete frame
        '00 00 00 05 01', // the next: header and 1 of 5 payload bytes
      ));
      expect(decoder.bufferedBytes).to.equal(5);
    });

    it('holds 14 bytes, not 8 MiB, after a header declaring 8 MiB and 10 payload bytes', () => {
      // The decoder starts a partial frame at 128 KiB and grows it as bytes arrive (SECURITY.md, case T2),
      // so 100 stalled decoders hold about 12.8 MiB. Preallocating the declared length would hold 800 MiB.
      const stalled = hex('00 80 00 00' + '00'.repeat(10)); // length 8388608, then 10 bytes
      const before = process.memoryUsage().arrayBuffers;
      const decoders: FrameDecoder[] = [];
      for (let i = 0; i < 100; i++) {
        const decoder = new FrameDecoder();
        expect(decoder.push(stalled)).to.deep.equal([]);
        decoders.push(decoder);
      }
      const grown = process.memoryUsage().arrayBuffers - before;
      for (const decoder of decoders) {
        expect(decoder.bufferedBytes).to.equal(14);
        expect(decoder.inFrame).to.equal(true);
      }
      expect(grown).to.be.below(100 * 256 * 1024);
    });
  });
});

describe('FrameDecoder#pushEach', () => {
  it('delivers the frames before a zero-length header in the same chunk, then throws', () => {
    const decoder = new FrameDecoder(1024);
    const seen: string[] = [];
    const chunk = Buffer.concat([encodeFrame(Buffer.from([0xa1, 0x61])), encodeFrame(Buffer.from([0xa1, 0x62])), Buffer.from([0, 0, 0, 0])]);
    expect(() => decoder.pushEach(chunk, (bytes, start, end) => (seen.push(bytes.toString('hex', start, end)), true))).to.throw(RpcError, 'zero-length frame');
    expect(seen).to.deep.equal(['a161', 'a162']);
  });

  it('hands out whole frames where they lie in the chunk, and a split frame from its own buffer', () => {
    const decoder = new FrameDecoder(1024);
    const chunk = Buffer.concat([encodeFrame(hex('a1 61')), encodeFrame(hex('a3 62 63 64')).subarray(0, 6)]);
    const seen: [Buffer, number, number][] = [];
    decoder.pushEach(chunk, (bytes, start, end) => (seen.push([bytes, start, end]), true));
    expect(seen).to.have.length(1);
    expect(seen[0]![0]).to.equal(chunk);
    expect([seen[0]![1], seen[0]![2]]).to.deep.equal([4, 6]);
    decoder.pushEach(hex('63 64'), (bytes, start, end) => (seen.push([bytes, start, end]), true));
    expect(seen).to.have.length(2);
    expect(seen[1]![0].toString('hex', seen[1]![1], seen[1]![2])).to.equal('a3626364');
  });

  it('stops delivering when onFrame returns false', () => {
    const decoder = new FrameDecoder(1024);
    const seen: number[] = [];
    const chunk = Buffer.concat([1, 2, 3].map((n) => encodeFrame(Buffer.from([n]))));
    decoder.pushEach(chunk, (bytes, start) => (seen.push(bytes[start]!), seen.length < 2));
    expect(seen).to.deep.equal([1, 2]);
  });
});

describe('FrameDecoder#leavesPartial', () => {
  const frameOf = (size: number): Buffer => encodeFrame(Buffer.alloc(size, 0xc0));

  it('is false for chunks of whole frames and true for a chunk that ends inside a frame or its header', () => {
    const decoder = new FrameDecoder(1024);
    expect(decoder.leavesPartial(Buffer.concat([frameOf(3), frameOf(5)]))).to.equal(false);
    expect(decoder.leavesPartial(Buffer.concat([frameOf(3), frameOf(5).subarray(0, 6)]))).to.equal(true);
    expect(decoder.leavesPartial(hex('00 00'))).to.equal(true);
  });

  it('follows the frame already begun: true until a chunk completes it, and it pushes nothing', () => {
    const decoder = new FrameDecoder(1024);
    const whole = frameOf(100);
    expect(decoder.push(whole.subarray(0, 50))).to.deep.equal([]);
    expect(decoder.leavesPartial(whole.subarray(50, 60))).to.equal(true);
    expect(decoder.leavesPartial(Buffer.concat([whole.subarray(50), frameOf(2)]))).to.equal(false);
    expect(decoder.push(whole.subarray(50))).to.have.length(1);
  });

  it('is false for a bad length prefix, so that push() reports it', () => {
    expect(new FrameDecoder(16).leavesPartial(hex('00 00 00 11'))).to.equal(false);
    expect(new FrameDecoder(16).leavesPartial(hex('00 00 00 00'))).to.equal(false);
  });
});
