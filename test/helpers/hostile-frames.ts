/**
 * Garbage frames a hostile peer sends on a tunnel it opened honestly, each with the goaway code a server must answer
 * (PROTOCOL.md section 9). The Node server's hostile tests and the Go server's run the same table.
 */
import { Packr } from 'msgpackr';
import { MessageType, encodeMessage } from '@tunnelrpc/protocol/internal';
import { frame, hex } from '@tunnelrpc/test-kit';

/** deepArrays is a request whose params nest `depth` arrays: 91 × depth, then nil. */
function deepArrays(depth: number): Buffer {
  return Buffer.concat([hex('94 00 01 a9'), Buffer.from('Echo.echo'), Buffer.alloc(depth, 0x91), hex('c0')]);
}

/** recordRequest encodes an honest-looking request the way msgpackr does with records on: a record definition. */
function recordRequest(): Buffer {
  const payload = new Packr({ useRecords: true }).pack([0, 1, 'Echo.echo', { a: 1, b: 2 }]);
  // d4 72 xx: fixext 1 of msgpackr's record-definition type 0x72.
  if (!payload.includes(hex('d4 72'))) throw new Error('msgpackr did not write a record definition');
  return payload;
}

/** GarbageCase is one hostile input: its bytes after the handshake and the goaway code it earns. */
export interface GarbageCase {
  name: string;
  bytes: () => Buffer;
  code: 'PROTOCOL_ERROR' | 'RESOURCE_EXHAUSTED';
}

/** GARBAGE lists the hostile inputs. */
export const GARBAGE: GarbageCase[] = [
  { name: 'a zero-length frame 00 00 00 00', bytes: () => hex('00 00 00 00'), code: 'PROTOCOL_ERROR' },
  { name: 'the frame header ff ff ff ff', bytes: () => hex('ff ff ff ff'), code: 'RESOURCE_EXHAUSTED' },
  { name: 'the frame header 80 00 00 00', bytes: () => hex('80 00 00 00'), code: 'RESOURCE_EXHAUSTED' },
  { name: 'a frame header of maxFrameSize + 1 (00 80 00 01)', bytes: () => hex('00 80 00 01'), code: 'RESOURCE_EXHAUSTED' },
  { name: 'a request carrying a msgpackr record definition (d4 72 ..)', bytes: () => frame(recordRequest()), code: 'PROTOCOL_ERROR' },
  { name: 'a frame holding the never-used byte c1', bytes: () => frame(hex('c1')), code: 'PROTOCOL_ERROR' },
  { name: 'a frame truncated inside a string (a5 61 62)', bytes: () => frame(hex('a5 61 62')), code: 'PROTOCOL_ERROR' },
  { name: 'a frame with trailing bytes (01 02 03)', bytes: () => frame(hex('01 02 03')), code: 'PROTOCOL_ERROR' },
  { name: 'a structured-clone cycle (d6 69 .. 91 d6 70 ..)', bytes: () => frame(hex('d6 69 00 00 00 01 91 d6 70 00 00 00 01')), code: 'PROTOCOL_ERROR' },
  { name: 'params nested 100,000 arrays deep', bytes: () => frame(deepArrays(100_000)), code: 'PROTOCOL_ERROR' },
  { name: 'params nested 1,000 arrays deep', bytes: () => frame(deepArrays(1_000)), code: 'PROTOCOL_ERROR' },
  { name: 'a million empty maps in a 1 MiB frame', bytes: () => frame(Buffer.concat([hex('dd 00 0f ff fb'), Buffer.alloc(1024 * 1024 - 5, 0x80)])), code: 'RESOURCE_EXHAUSTED' },
  { name: 'an array declaring 4294967295 elements (dd ff ff ff ff)', bytes: () => frame(hex('dd ff ff ff ff')), code: 'PROTOCOL_ERROR' },
  { name: 'a response [1, 1, nil, nil] sent to the server', bytes: () => encodeMessage({ type: MessageType.Response, id: 1, result: null }), code: 'PROTOCOL_ERROR' },
  { name: 'a request with a non-string method', bytes: () => frame(hex('94 00 01 07 c0')), code: 'PROTOCOL_ERROR' },
  { name: 'a request with id -1', bytes: () => frame(Buffer.concat([hex('94 00 ff a9'), Buffer.from('Echo.echo'), hex('c0')])), code: 'PROTOCOL_ERROR' },
  { name: 'a stream message [4, 1] without its message', bytes: () => frame(hex('92 04 01')), code: 'PROTOCOL_ERROR' },
  { name: 'a half-close [5, 1] for a stream never opened', bytes: () => frame(hex('92 05 01')), code: 'PROTOCOL_ERROR' },
];

