/**
 * Byte builders for hand-made MessagePack: plain values through a records-off Packr, and the pieces a hostile
 * peer assembles by hand (str8 keys, maps of raw entries). Requests with raw fields are the test kit's rawRequest.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, encodeUndefinedAsNil: true });

/** pack encodes one value as standard MessagePack (no records, no extensions besides timestamps). */
export function pack(value: unknown): Buffer {
  return Buffer.from(packr.pack(value));
}

/** str8 encodes a string as str8 (d9 LEN), the form msgpackr itself never writes for short keys. */
export function str8(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 255) throw new Error(`str8(): ${bytes.length} bytes do not fit`);
  return Buffer.concat([Buffer.from([0xd9, bytes.length]), bytes]);
}

/** map encodes a fixmap (at most 15 entries) of raw key and value bytes. */
export function map(entries: ReadonlyArray<readonly [Buffer, Buffer]>): Buffer {
  if (entries.length > 15) throw new Error('map(): a fixmap holds at most 15 entries');
  return Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.flat()]);
}
