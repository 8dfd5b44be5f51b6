import { expect } from 'chai';
import { type DecodeLimits, type ErrorCode, type RpcError } from '@tunnelrpc/protocol';
import { DEFAULT_DECODE_LIMITS, scanMessagePack, scanParts } from '@tunnelrpc/protocol/internal';
import { expectNoPeerBytes, expectThrows, hex, repeat } from '@tunnelrpc/test-kit';

type ScanLimits = Pick<DecodeLimits, 'maxDepth' | 'maxItemsPerFrame'>;

/**
 * expectRefused asserts that the scan refuses `input` with `code` and a message containing `fragment`, and that the
 * message quotes none of the peer's bytes: neither their hex nor any printable run of 3 or more characters.
 */
function expectRefused(input: Buffer, code: ErrorCode, fragment: string, limits: ScanLimits = DEFAULT_DECODE_LIMITS): RpcError {
  const error = expectThrows(() => scanMessagePack(input, limits), code, fragment);
  expectNoPeerBytes(error.message, input, 3);
  return error;
}

/** nested wraps `inner` in `levels` one-element containers opened by `open` (91 for arrays, 81 a1 6b for maps). */
function nested(open: string, levels: number, inner = 'c0'): Buffer {
  return Buffer.concat([repeat(hex(open), levels), hex(inner)]);
}

/** u32 renders a number as 4 big-endian bytes of hex. */
function u32(value: number): string {
  return value.toString(16).padStart(8, '0');
}

/** u64 renders a bigint as 8 big-endian two's-complement bytes of hex. */
function u64(value: bigint): string {
  return BigInt.asUintN(64, value).toString(16).padStart(16, '0');
}

const EXTENSION_TYPES = [0x78, 0x65, 0x73, 0x74, 0x42, 0x62, 0x00, 0x05, 0x7f, 0x72, 0x69, 0x70];

describe('scanMessagePack', () => {
  describe('valid input', () => {
    it('returns the number of values, counting containers, keys and values', () => {
      expect(scanMessagePack(hex('c0'), DEFAULT_DECODE_LIMITS)).to.equal(1);
      expect(scanMessagePack(hex('92 06 c0'), DEFAULT_DECODE_LIMITS)).to.equal(3); // [6, nil]
      expect(scanMessagePack(hex('81 a1 61 01'), DEFAULT_DECODE_LIMITS)).to.equal(3); // {a: 1}
      expect(scanMessagePack(hex('90'), DEFAULT_DECODE_LIMITS)).to.equal(1); // []
    });

    it('accepts every standard format and skips exactly its bytes', () => {
      const value = hex(
        'dc 00 1e' + //                             array16 of 30 values:
        'c0 c2 c3' + //                             nil, false, true
        '7f e0' + //                                positive and negative fixint
        'cc ff cd ff ff ce ff ff ff ff' + //        uint8, uint16, uint32
        'cf 00 00 00 00 00 00 00 01' + //           uint64
        'd0 80 d1 80 00 d2 80 00 00 00' + //        int8, int16, int32
        'd3 80 00 00 00 00 00 00 00' + //           int64
        'ca 3f c0 00 00' + //                       float32 1.5
        'cb 3f f8 00 00 00 00 00 00' + //           float64 1.5
        'a3 61 62 63' + //                          fixstr "abc"
        'd9 01 78 da 00 01 78 db 00 00 00 01 78' + // str8, str16, str32 "x"
        'c4 01 00 c5 00 01 00 c6 00 00 00 01 00' + // bin8, bin16, bin32 of one byte
        '91 01' + //                                fixarray [1]
        'dd 00 00 00 01 01' + //                    array32 [1]
        '81 01 02' + //                             fixmap {1: 2}
        'de 00 01 01 02' + //                       map16 {1: 2}
        'df 00 00 00 01 01 02' + //                 map32 {1: 2}
        'd6 ff 00 00 00 01' + //                    timestamp 32
        'd7 ff 00 00 00 00 00 00 00 01' + //        timestamp 64
        'c7 0c ff 00 00 00 00 00 00 00 00 00 00 00 01', // timestamp 96
      );
      // 1 array16 + 30 values + 2 inner values of the two arrays + 3 × 2 keys and values of the maps.
      expect(scanMessagePack(value, DEFAULT_DECODE_LIMITS)).to.equal(1 + 30 + 2 + 6);
    });

    it('accepts a timestamp 32 (d6 ff <u32>)', () => {
      expect(scanMessagePack(hex('d6 ff 5f 5e 10 00'), DEFAULT_DECODE_LIMITS)).to.equal(1);
    });

    it('accepts timestamp nanoseconds up to 999999999 and seconds up to the Date range', () => {
      const accepted = [
        'd7 ff' + u32(999_999_999 * 4) + '00 00 00 00', //   timestamp 64: nanoseconds 999999999, seconds 0
        'c7 0c ff' + u32(999_999_999) + u64(0n), //          timestamp 96: nanoseconds 999999999
        'c7 0c ff' + u32(0) + u64(8_640_000_000_000n), //    seconds +8.64e12, the last second Date can hold
        'c7 0c ff' + u32(0) + u64(-8_640_000_000_000n), //   seconds -8.64e12
      ];
      for (const input of accepted) expect(scanMessagePack(hex(input), DEFAULT_DECODE_LIMITS), input).to.equal(1);
    });

    it('reads only the bytes of its view, not the rest of the ArrayBuffer', () => {
      const backing = hex('ff ff 92 06 c0 ff ff');
      expect(scanMessagePack(backing.subarray(2, 5), DEFAULT_DECODE_LIMITS)).to.equal(3);
    });

    it('accepts scalar map keys: strings, integers, nil, booleans and floats', () => {
      const value = hex('85 a1 61 01 07 02 c0 03 c3 04 cb 3f f8 00 00 00 00 00 00 05');
      expect(scanMessagePack(value, DEFAULT_DECODE_LIMITS)).to.equal(11);
    });

    it('accepts arrays and maps as map values', () => {
      expect(scanMessagePack(hex('82 a1 61 91 01 a1 62 81 01 02'), DEFAULT_DECODE_LIMITS)).to.equal(8);
    });
  });

  describe('truncation and trailing bytes', () => {
    it('fails on the truncated string a5 61 62', () => {
      expectRefused(hex('a5 61 62'), 'INTERNAL', 'protocol violation: truncated');
    });

    it('fails on an empty buffer', () => {
      expectRefused(hex(''), 'INTERNAL', 'truncated');
    });

    it('fails on every fixed-width format cut short', () => {
      const cut = ['cc', 'cd 01', 'ce 01 02 03', 'cf 00', 'd0', 'd1 00', 'd2 00', 'd3 00 00', 'ca 00', 'cb 00 00',
        'd9', 'da 00', 'db 00 00', 'c4', 'c5 00', 'c6 00 00 00', 'd6 ff 00', 'd7 ff 00 00', 'c7', 'c7 0c ff 00',
        'dc 00', 'dd 00 00', 'de 00', 'df 00', '92 01', '81 01'];
      for (const input of cut) expectRefused(hex(input), 'INTERNAL', 'protocol violation', DEFAULT_DECODE_LIMITS);
    });

    it('fails on trailing bytes after one value (01 02 03)', () => {
      expectRefused(hex('01 02 03'), 'INTERNAL', '2 bytes left over');
    });

    it('fails on a second value after a complete message', () => {
      expectRefused(hex('92 06 c0 92 06 c0'), 'INTERNAL', '3 bytes left over');
    });

    it('stops at the end of its view even when the ArrayBuffer goes on', () => {
      const backing = hex('a5 61 62 63 64 65'); // "abcde" in full, but the view holds only a5 61 62
      expectRefused(backing.subarray(0, 3), 'INTERNAL', 'truncated');
    });
  });

  describe('the never-used byte c1', () => {
    it('fails on c1 alone', () => {
      expectRefused(hex('c1'), 'INTERNAL', '0xc1');
    });

    it('fails on c1 nested in an array', () => {
      expectRefused(hex('91 c1'), 'INTERNAL', '0xc1');
    });

    it('fails on c1 as a map value and as a map key', () => {
      expectRefused(hex('81 a1 61 c1'), 'INTERNAL', '0xc1');
      expectRefused(hex('81 c1 01'), 'INTERNAL', '0xc1');
    });
  });

  describe('depth', () => {
    it('accepts arrays nested exactly maxDepth (32) deep', () => {
      expect(scanMessagePack(nested('91', 32), DEFAULT_DECODE_LIMITS)).to.equal(33);
    });

    it('fails on arrays nested maxDepth + 1 (33) deep', () => {
      const error = expectRefused(nested('91', 33), 'INTERNAL', 'deeper than maxDepth 32');
      expect(error.data).to.deep.equal({ maxDepth: 32 });
    });

    it('counts maps as levels too: 32 pass, 33 fail', () => {
      expect(scanMessagePack(nested('81 a1 6b', 32), DEFAULT_DECODE_LIMITS)).to.equal(1 + 32 * 2);
      expectRefused(nested('81 a1 6b', 33), 'INTERNAL', 'maxDepth 32');
    });

    it('counts mixed arrays and maps, and an empty container as a level of its own', () => {
      expect(scanMessagePack(nested('91 81 a1 6b', 16), DEFAULT_DECODE_LIMITS)).to.equal(1 + 16 * 3); // 32 levels
      expect(scanMessagePack(nested('91 81 a1 6b', 15, '91 90'), DEFAULT_DECODE_LIMITS)).to.equal(2 + 15 * 3); // 30 + [[]]
      expectRefused(nested('91 81 a1 6b', 16, '90'), 'INTERNAL', 'maxDepth 32'); // 32 levels + [] = 33
    });

    it('honours a custom maxDepth of 2', () => {
      const limits = { maxDepth: 2, maxItemsPerFrame: 100 };
      expect(scanMessagePack(hex('91 91 c0'), limits)).to.equal(3);
      const error = expectRefused(hex('91 91 91 c0'), 'INTERNAL', 'maxDepth 2', limits);
      expect(error.data).to.deep.equal({ maxDepth: 2 });
    });

    it('fails on 100000 nested arrays (91 × 100000, c0) with the depth error', () => {
      expectRefused(nested('91', 100_000), 'INTERNAL', 'maxDepth 32');
    });

    it('stops at the 33rd level: 100000 open arrays with no end still report depth, not truncation', () => {
      // Were the whole input walked, the missing innermost value would be reported as truncation.
      expectRefused(repeat(hex('91'), 100_000), 'INTERNAL', 'maxDepth 32');
    });

    it('fails on 24000 × dc ff ff (msgpackr#200) without allocating their declared lengths', () => {
      expectRefused(repeat(hex('dc ff ff'), 24_000), 'INTERNAL', 'protocol violation');
    });
  });

  describe('maxItemsPerFrame', () => {
    it('accepts exactly maxItemsPerFrame values and refuses one more with RESOURCE_EXHAUSTED', () => {
      const fourItems = hex('93 01 02 03'); // the array and its three values
      expect(scanMessagePack(fourItems, { maxDepth: 32, maxItemsPerFrame: 4 })).to.equal(4);
      const error = expectRefused(fourItems, 'RESOURCE_EXHAUSTED', 'maxItemsPerFrame 3', { maxDepth: 32, maxItemsPerFrame: 3 });
      expect(error.data).to.deep.equal({ maxItemsPerFrame: 3 });
    });

    it('counts map keys as values', () => {
      const threeItems = hex('81 a1 61 01'); // map, key, value
      expect(scanMessagePack(threeItems, { maxDepth: 32, maxItemsPerFrame: 3 })).to.equal(3);
      expectRefused(threeItems, 'RESOURCE_EXHAUSTED', 'maxItemsPerFrame', { maxDepth: 32, maxItemsPerFrame: 2 });
    });

    it('accepts 262144 values and refuses 262145 at the default limit', () => {
      const atLimit = Buffer.concat([hex('dd' + u32(262_143)), repeat(hex('c0'), 262_143)]); // array + 262143 nils
      expect(scanMessagePack(atLimit, DEFAULT_DECODE_LIMITS)).to.equal(262_144);
      const overLimit = Buffer.concat([hex('dd' + u32(262_144)), repeat(hex('c0'), 262_144)]);
      expectRefused(overLimit, 'RESOURCE_EXHAUSTED', 'maxItemsPerFrame 262144');
    });

    it('refuses the million-empty-maps frame (dd 00 0f ff fb + 80 × 1048571) with RESOURCE_EXHAUSTED', () => {
      const frame = Buffer.concat([hex('dd 00 0f ff fb'), repeat(hex('80'), 1_048_571)]);
      expect(frame.length).to.equal(1024 * 1024);
      const error = expectRefused(frame, 'RESOURCE_EXHAUSTED', 'maxItemsPerFrame');
      expect(error.data).to.deep.equal({ maxItemsPerFrame: 262_144 });
    });
  });

  describe('declared lengths past the end', () => {
    it('fails on dd ff ff ff ff (array32 of 4294967295 values, none present)', () => {
      expectRefused(hex('dd ff ff ff ff'), 'INTERNAL', 'declares more values than the frame holds');
    });

    it('fails on df ff ff ff ff (map32 of 4294967295 pairs, none present)', () => {
      expectRefused(hex('df ff ff ff ff'), 'INTERNAL', 'declares more values than the frame holds');
    });

    it('fails on dc ff ff and de ff ff alone', () => {
      expectRefused(hex('dc ff ff'), 'INTERNAL', 'declares more values');
      expectRefused(hex('de ff ff'), 'INTERNAL', 'declares more values');
    });

    it('counts a map of n pairs as 2n values against the bytes left', () => {
      expect(scanMessagePack(hex('82 01 02 03 04'), DEFAULT_DECODE_LIMITS)).to.equal(5);
      expectRefused(hex('82 01 02 03'), 'INTERNAL', 'declares more values');
    });

    it('fails on db ff ff ff ff 61 62 63 (str32 of 4 GiB holding "abc")', () => {
      expectRefused(hex('db ff ff ff ff 61 62 63'), 'INTERNAL', 'truncated');
    });

    it('fails on c6 ff ff ff ff (bin32 of 4 GiB)', () => {
      expectRefused(hex('c6 ff ff ff ff'), 'INTERNAL', 'truncated');
    });

    it('fails on c9 ff ff ff ff 01 (ext32 of 4 GiB, type 1)', () => {
      expectRefused(hex('c9 ff ff ff ff 01'), 'INTERNAL', 'extension type 1 is not allowed');
    });
  });

  describe('extensions', () => {
    it('fails on a msgpackr record definition (d4 72 40 ...)', () => {
      expectRefused(hex('d4 72 40 05'), 'INTERNAL', 'extension type 114 is not allowed');
    });

    it('fails on a record definition inside a message (92 d4 72 40 92 a1 61 a1 62 01 02 40 03 04)', () => {
      expectRefused(hex('92 d4 72 40 92 a1 61 a1 62 01 02 40 03 04'), 'INTERNAL', 'extension type 114');
    });

    it('fails on the structured-clone cycle d6 69 00 00 00 01 91 d6 70 00 00 00 01', () => {
      expectRefused(hex('d6 69 00 00 00 01 91 d6 70 00 00 00 01'), 'INTERNAL', 'extension type 105 is not allowed');
    });

    it('fails on the dangling structured-clone pointer d6 70 00 00 00 07', () => {
      expectRefused(hex('d6 70 00 00 00 07'), 'INTERNAL', 'extension type 112 is not allowed');
    });

    it('fails on every non-timestamp extension type in every extension format', () => {
      for (const type of EXTENSION_TYPES) {
        const t = type.toString(16).padStart(2, '0');
        const forms = [
          `d4 ${t} 00`, //                            fixext 1
          `d5 ${t} 00 00`, //                         fixext 2
          `d6 ${t} 00 00 00 00`, //                   fixext 4
          `d7 ${t} 00 00 00 00 00 00 00 00`, //       fixext 8
          `d8 ${t} ${'00 '.repeat(16)}`, //           fixext 16
          `c7 01 ${t} 00`, //                         ext 8, length 1
          `c7 0c ${t} ${'00 '.repeat(12)}`, //        ext 8, length 12 (the timestamp 96 length)
          `c8 00 01 ${t} 00`, //                      ext 16, length 1
          `c9 00 00 00 01 ${t} 00`, //                ext 32, length 1
          `91 d4 ${t} 00`, //                         nested in an array
        ];
        for (const form of forms) {
          const error = expectRefused(hex(form), 'INTERNAL', `extension type ${type} is not allowed`);
          expect(error.message, form).to.include('only the timestamp extension (-1)');
        }
      }
    });

    it('fails on a timestamp of a non-standard length (c7 03 ff 01 02 03)', () => {
      expectRefused(hex('c7 03 ff 01 02 03'), 'INTERNAL', 'protocol violation');
    });

    it('fails on the timestamp type in fixext 1, 2 and 16, ext 16 and ext 32', () => {
      const forms = ['d4 ff 00', 'd5 ff 00 00', `d8 ff ${'00 '.repeat(16)}`, 'c8 00 04 ff 00 00 00 01', 'c9 00 00 00 04 ff 00 00 00 01'];
      for (const form of forms) expectRefused(hex(form), 'INTERNAL', 'protocol violation');
    });

    it('fails on a timestamp 64 whose nanoseconds reach 1e9', () => {
      expectRefused(hex('d7 ff' + u32(1_000_000_000 * 4) + '00 00 00 00'), 'INTERNAL', 'timestamp extension out of range');
    });

    it('fails on a timestamp 96 whose nanoseconds reach 1e9', () => {
      expectRefused(hex('c7 0c ff' + u32(1_000_000_000) + u64(0n)), 'INTERNAL', 'timestamp extension out of range');
    });

    it('fails on a timestamp 96 one second beyond the Date range, either way', () => {
      expectRefused(hex('c7 0c ff' + u32(0) + u64(8_640_000_000_001n)), 'INTERNAL', 'timestamp extension out of range');
      expectRefused(hex('c7 0c ff' + u32(0) + u64(-8_640_000_000_001n)), 'INTERNAL', 'timestamp extension out of range');
    });
  });

  describe('map keys', () => {
    it('fails on a map whose key is an array (81 91 01 02)', () => {
      expectRefused(hex('81 91 01 02'), 'INTERNAL', 'a map key is an array or a map');
    });

    it('fails on a map whose key is an empty array or an empty map', () => {
      expectRefused(hex('81 90 01'), 'INTERNAL', 'a map key is an array or a map');
      expectRefused(hex('81 80 01'), 'INTERNAL', 'a map key is an array or a map');
    });

    it('fails on an array key of a map nested in an array, and on the second key of a map', () => {
      expectRefused(hex('91 81 91 01 02'), 'INTERNAL', 'a map key is an array or a map');
      expectRefused(hex('82 a1 61 01 91 01 02'), 'INTERNAL', 'a map key is an array or a map');
    });

    it('fails on a map whose key is a timestamp', () => {
      expectRefused(hex('81 d6 ff 00 00 00 00 01'), 'INTERNAL', 'a map key is an extension value');
    });

    it('fails on a map16 and a map32 whose key is a map', () => {
      expectRefused(hex('de 00 01 80 01'), 'INTERNAL', 'a map key is an array or a map');
      expectRefused(hex('df 00 00 00 01 dc 00 00 01'), 'INTERNAL', 'a map key is an array or a map');
    });
  });
});

describe('scanMessagePack regressions', () => {
  it('fails on a timestamp 96 at the last second of the Date range with a nanosecond part', () => {
    const input = hex('c7 0c ff' + '00 0f 42 40' + '00 00 07 db a8 21 80 00');
    expectThrows(() => scanMessagePack(input, DEFAULT_DECODE_LIMITS), 'INTERNAL', 'timestamp extension out of range');
  });

  it('names the wrong length, not the type, for a timestamp of 3 bytes', () => {
    const error = expectRefused(hex('c7 03 ff 01 02 03'), 'INTERNAL', 'must hold 4, 8 or 12 bytes');
    expect(error.message).to.not.contain('is not allowed');
  });
});

// What a scan says of an input: the count, or the error's code and message.
function verdict(scan: () => number): string {
  try {
    return `count ${scan()}`;
  } catch (error) {
    const rpc = error as RpcError;
    return `${rpc.code}: ${rpc.message}`;
  }
}

describe('scanParts', () => {
  const inputs = [
    // [0, 1, "E.b", bin 20, {timeout: 5}]: a request as the envelope writes it
    '95 00 01 a3 45 2e 62 c4 14' + '00'.repeat(20) + '81 a7 74 69 6d 65 6f 75 74 05',
    // [1, 2, nil, {a: 1, b: str8 "hello"}]
    '94 01 02 c0 82 a1 61 01 a1 62 a5 68 65 6c 6c 6f',
    // containers whose counts run into later parts, and a 16-bit map header
    'dc 00 03 de 00 01 a1 6b 92 01 02 c3 c2',
    // timestamps in their three forms
    '93 d6 ff 00 00 00 01 d7 ff 00 00 00 00 00 00 00 01 c7 0c ff 00 00 00 00 00 00 00 00 00 00 00 01',
    // refused: truncated bin, trailing bytes, an extension, a lying count, c1, too deep for the limits below
    '92 01 c4 10 00 00',
    '92 01 02 03 04',
    '92 01 d4 05 00',
    '9f 01',
    '92 c1 01',
    '91 91 91 91 91 c0',
  ];
  const limits = { maxDepth: 4, maxItemsPerFrame: 64 };

  it('says what scanMessagePack says of the joined bytes, for every cut into two and three parts', () => {
    let compared = 0;
    for (const text of inputs) {
      const joined = hex(text);
      const expected = verdict(() => scanMessagePack(joined, limits));
      for (let a = 0; a <= joined.length; a++) {
        expect(verdict(() => scanParts([joined.subarray(0, a), joined.subarray(a)], limits)), `${text} cut at ${a}`).to.equal(expected);
        for (let b = a; b <= joined.length; b += 3) {
          const parts = [joined.subarray(0, a), joined.subarray(a, b), joined.subarray(b)];
          expect(verdict(() => scanParts(parts, limits)), `${text} cut at ${a}, ${b}`).to.equal(expected);
          compared++;
        }
      }
    }
    expect(compared).to.be.greaterThan(500);
  });

  it('skips a large bin body given as a part of its own without joining it', () => {
    const body = Buffer.alloc(64 * 1024);
    const parts = [hex('93 04 01 c6 00 01 00 00'), body, hex('')];
    expect(scanParts(parts, DEFAULT_DECODE_LIMITS)).to.equal(4);
    expect(verdict(() => scanParts([hex('93 04 01 c6 00 01 00 00'), body.subarray(1)], DEFAULT_DECODE_LIMITS))).to.match(/truncated/);
  });
});
