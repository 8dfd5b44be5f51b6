/**
 * Every hex example of PROTOCOL.md, checked against the code, so that the spec cannot drift from it again.
 *
 * Extraction: each example in PROTOCOL.md is announced by a marker line, an HTML comment that renders as nothing.
 *
 *   <!-- example: NAME -->               before a fenced block: the block is one example. Each line of the block
 *                                        starts with hex bytes; an explanation may follow after two or more spaces.
 *   <!-- examples: NAME1 NAME2 ... -->   before a table: the table's code spans that hold only hex bytes are the
 *                                        examples, in reading order, one name each.
 *
 * Each name has an entry in EXAMPLES below saying what the bytes are. A frame decodes to its stated message, and
 * unless the entry says it is an alternative encoding (hand-made, or a pong that copies a ping's bytes), it is byte
 * for byte encodeMessage's output. The frames the
 * reference server sends are also replayed against a real Echo server and compared byte for byte. A fenced block
 * of hex, or a frame in a table, without a marker fails the test, as does a marker without an entry.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { RpcError } from '@tunnelrpc/protocol';
import {
  CONNECTED_RESPONSE,
  FrameDecoder,
  decodeMessage,
  encodeConnectRequest,
  encodeMessage,
  encodePayload,
  type Message,
} from '@tunnelrpc/protocol/internal';
import { Cleanup } from '../helpers/cleanup.js';
import { startEchoServer, type EchoServer } from '../helpers/servers.js';

const PROTOCOL_MD = fileURLToPath(new URL('../../../PROTOCOL.md', import.meta.url));

/** What one example is. */
type Example =
  /** A complete frame that decodes to `message`; `alternative` when encodeMessage would write other bytes. */
  | { kind: 'frame'; message: Message; alternative?: true }
  /** A frame (or frame header) the receiver refuses with a goaway of this code. */
  | { kind: 'violation'; code: 'PROTOCOL_ERROR' | 'RESOURCE_EXHAUSTED' }
  /** The client's CONNECT head, as encodeConnectRequest writes it. */
  | { kind: 'connect-head'; path: string; host: string; headers: Record<string, string> }
  /** The server's 200 reply head. */
  | { kind: 'connected' }
  /** MessagePack values, one per line of the block, each the reference encoder's output. */
  | { kind: 'values'; values: unknown[] };

const request = (id: number, method: string, params: unknown, meta?: { timeout?: number; headers?: Record<string, string> }): Example => ({
  kind: 'frame',
  message: meta === undefined ? { type: 0, id, method, params } : { type: 0, id, method, params, meta },
});
const result = (id: number, value: unknown): Example => ({ kind: 'frame', message: { type: 1, id, result: value } });
// The reference server writes mayHaveRun in the error map and, for older peers, in map data: both from `data`.
const failure = (id: number, code: string, message: string, data?: unknown): Example => {
  const flag = (data as { mayHaveRun?: unknown } | undefined)?.mayHaveRun;
  const error = data === undefined ? { code, message } : typeof flag === 'boolean' ? { code, message, data, mayHaveRun: flag } : { code, message, data };
  return { kind: 'frame', message: { type: 1, id, error, result: undefined } };
};
const goaway = (lastId: number, code: string, message: string): Example => ({ kind: 'frame', message: { type: 8, lastId, code, message } });

const INVALID_B = 'Invalid input: expected number, received string';
const SHUTDOWN = 'server is shutting down; reconnect to another instance';
const TOO_LARGE = 'frame of 8388609 bytes received exceeds maxFrameSize 8388608; raise maxFrameSize on both peers or send smaller values';

const EXAMPLES: Record<string, Example> = {
  // 1.1 Example session
  'session-add-request': request(1, 'Echo.add', { a: 1, b: 2 }),
  'session-connected': { kind: 'connected' },
  'session-add-response': result(1, 3),
  'session-notify': { kind: 'frame', message: { type: 2, method: 'Echo.notify', params: 'hi' } },
  'session-count-request': request(2, 'Echo.count', null),
  'session-count-response': result(2, 1),
  'session-ping': { kind: 'frame', message: { type: 6, data: 42 } },
  'session-pong': { kind: 'frame', message: { type: 7, data: 42 } },
  'session-goaway': goaway(0, 'UNAVAILABLE', 'client closing'),
  // 2 Handshake
  'connect-head': { kind: 'connect-head', path: '/_rpc', host: 'localhost:8080', headers: { Authorization: 'Bearer s3cret' } },
  'connected-reply': { kind: 'connected' },
  // 3 Frames
  'frame-ping': { kind: 'frame', message: { type: 6, data: 42 } },
  'frame-header-too-large': { kind: 'violation', code: 'RESOURCE_EXHAUSTED' },
  // 4.6 Timestamps
  timestamps: { kind: 'values', values: [new Date('2023-11-14T22:13:20Z'), new Date('2023-11-14T22:13:20.123Z'), new Date('1969-12-31T23:59:59Z')] },
  // 5.1 Request
  'request-add': request(1, 'Echo.add', { a: 1, b: 2 }),
  'request-add-uint64-id': { ...request(1, 'Echo.add', { a: 1, b: 2 }), alternative: true } as Example,
  'request-meta': request(2, 'Echo.sleep', { ms: 100 }, { timeout: 5000, headers: { 'x-trace-id': 'abc' } }),
  'request-nil-params': request(3, 'Echo.count', null),
  'request-largest-id': request(4294967295, 'Echo.count', null),
  // 5.2 Response
  'response-success': result(1, 3),
  'response-nil-result': result(12, null),
  'response-error': failure(4, 'NOT_FOUND', 'no such key'),
  'response-invalid-argument': failure(5, 'INVALID_ARGUMENT', `invalid params for Echo.add: b: ${INVALID_B}`, {
    issues: [{ path: ['b'], code: 'invalid_type', message: INVALID_B }],
    total: 1,
    mayHaveRun: false,
  }),
  // 5.3 to 5.7
  notification: { kind: 'frame', message: { type: 2, method: 'Echo.notify', params: 'hi' } },
  'notification-meta': { kind: 'frame', message: { type: 2, method: 'Echo.notify', params: 1, meta: { headers: { 'x-trace-id': 'abc' } } } },
  cancel: { kind: 'frame', message: { type: 3, id: 2 } },
  ping: { kind: 'frame', message: { type: 6, data: 42 } },
  pong: { kind: 'frame', message: { type: 7, data: 42 } },
  'ping-map16': { kind: 'frame', message: { type: 6, data: { a: 1 } }, alternative: true },
  'pong-map16': { kind: 'frame', message: { type: 7, data: { a: 1 } }, alternative: true },
  'goaway-shutdown': goaway(7, 'UNAVAILABLE', 'server shutting down'),
  'goaway-violation': goaway(3, 'PROTOCOL_ERROR', 'zero-length frame'),
  'goaway-client': goaway(0, 'UNAVAILABLE', 'client closing'),
  // 7.2 Graceful shutdown by the server
  'shutdown-request-5': request(5, 'Echo.sleep', { ms: 200 }),
  'shutdown-request-6': request(6, 'Echo.sleep', { ms: 300 }),
  'shutdown-goaway': goaway(6, 'UNAVAILABLE', SHUTDOWN),
  'shutdown-request-7': request(7, 'Echo.add', { a: 1, b: 2 }),
  'shutdown-response-5': result(5, { slept: 200 }),
  'shutdown-response-6': result(6, { slept: 300 }),
  // 7.4 Violations
  'violation-zero-length': { kind: 'violation', code: 'PROTOCOL_ERROR' },
  'violation-zero-length-goaway': goaway(3, 'PROTOCOL_ERROR', 'protocol violation: zero-length frame; every frame carries one MessagePack value'),
  'goaway-frame-too-large': goaway(0, 'RESOURCE_EXHAUSTED', TOO_LARGE),
  // 8.1 Server deadline
  'deadline-request': request(3, 'Echo.sleep', { ms: 60000 }, { timeout: 50 }),
  'deadline-response': failure(3, 'DEADLINE_EXCEEDED', 'Echo.sleep passed its deadline of 50 ms', { mayHaveRun: true }),
  // 8.3 Cancellation
  'cancel-request': request(4, 'Echo.sleep', { ms: 60000 }),
  'cancel-cancel': { kind: 'frame', message: { type: 3, id: 4 } },
  'cancel-response': failure(4, 'CANCELLED', 'call Echo.sleep was cancelled by the client', { mayHaveRun: true }),
  // 11 The Echo test fixture
  'echo-add-request': request(1, 'Echo.add', { a: 1, b: 2 }),
  'echo-add-response': result(1, 3),
  'echo-invalid-request': request(5, 'Echo.add', { a: 1, b: 'x' }),
  'echo-fail-request': request(4, 'Echo.fail', { code: 'NOT_FOUND', message: 'no such key' }),
  'echo-fail-response': failure(4, 'NOT_FOUND', 'no such key', { mayHaveRun: true }),
  'echo-crash-request': request(8, 'Echo.crash', null),
  'echo-crash-response': failure(8, 'INTERNAL', 'internal error in Echo.crash; the server logged the details', { mayHaveRun: true }),
  'echo-nope-request': request(10, 'Echo.nope', null),
  'echo-nope-response': failure(10, 'UNIMPLEMENTED', 'method "Echo.nope" is not implemented by this server; check the service and method name', { mayHaveRun: false }),
  'echo-sleep0-request': request(11, 'Echo.sleep', { ms: 10 }, { timeout: 0 }),
  'echo-sleep0-response': failure(11, 'DEADLINE_EXCEEDED', 'deadline of Echo.sleep had passed before it arrived', { mayHaveRun: false }),
  'echo-echo-request': request(9, 'Echo.echo', { s: 'hé', n: [1, -1, 1.5, null, true], b: Buffer.from([1, 2, 3]) }),
  'echo-echo-response': result(9, { s: 'hé', n: [1, -1, 1.5, null, true], b: Buffer.from([1, 2, 3]) }),
  'echo-date-request': request(6, 'Echo.echo', new Date('2023-11-14T22:13:20Z')),
  'echo-date-response': result(6, new Date('2023-11-14T22:13:20Z')),
  // 11 The Echo test fixture: streams (section 12; replayed in order by stream-wire.test.ts)
  'stream-ticks-open': { kind: 'frame', message: { type: 0, id: 1, method: 'Echo.ticks', params: { n: 3 }, meta: { credit: 2, maxMessageSize: 131072 } } },
  'stream-ticks-m0': { kind: 'frame', message: { type: 4, id: 1, message: 0 } },
  'stream-ticks-m1': { kind: 'frame', message: { type: 4, id: 1, message: 1 } },
  'stream-ticks-grant': { kind: 'frame', message: { type: 9, id: 1, n: 2 } },
  'stream-ticks-m2': { kind: 'frame', message: { type: 4, id: 1, message: 2 } },
  'stream-ticks-result': result(1, { sent: 3 }),
  'stream-sum-open': request(2, 'Echo.sum', null),
  'stream-sum-grant': { kind: 'frame', message: { type: 9, id: 2, n: 32, maxMessageSize: 131072 } },
  'stream-sum-m1': { kind: 'frame', message: { type: 4, id: 2, message: 1 } },
  'stream-sum-m2': { kind: 'frame', message: { type: 4, id: 2, message: 2.5 } },
  'stream-sum-half': { kind: 'frame', message: { type: 5, id: 2 } },
  'stream-sum-result': result(2, 3.5),
  'stream-chat-open': { kind: 'frame', message: { type: 0, id: 3, method: 'Echo.chat', params: null, meta: { credit: 32, maxMessageSize: 131072 } } },
  'stream-chat-grant': { kind: 'frame', message: { type: 9, id: 3, n: 32, maxMessageSize: 131072 } },
  'stream-chat-in': { kind: 'frame', message: { type: 4, id: 3, message: 'hi' } },
  'stream-chat-out': { kind: 'frame', message: { type: 4, id: 3, message: 'hi' } },
  'stream-chat-half': { kind: 'frame', message: { type: 5, id: 3 } },
  'stream-chat-result': result(3, { echoed: 1 }),
};

/** Request frames sent to a real Echo server, each on its own connection, and the frame it answers with. */
const EXCHANGES: Array<[string, string]> = [
  ['echo-add-request', 'echo-add-response'],
  ['echo-invalid-request', 'response-invalid-argument'],
  ['echo-fail-request', 'echo-fail-response'],
  ['echo-crash-request', 'echo-crash-response'],
  ['echo-nope-request', 'echo-nope-response'],
  ['echo-sleep0-request', 'echo-sleep0-response'],
  ['echo-echo-request', 'echo-echo-response'],
  ['echo-date-request', 'echo-date-response'],
  ['deadline-request', 'deadline-response'],
  ['ping-map16', 'pong-map16'],
];

/** One example as found in PROTOCOL.md: its bytes, and its lines for a block (a table cell is one line). */
interface Found {
  bytes: Buffer;
  lines: Buffer[];
  at: number;
}

const HEX_RUN = /^[0-9a-f]{2}(?: [0-9a-f]{2})*$/;

/** hexOfLine takes the hex bytes a block line starts with (its explanation follows after two or more spaces). */
function hexOfLine(line: string): string | undefined {
  const head = line.split(/ {2,}/)[0]!.trim();
  return HEX_RUN.test(head) ? head : undefined;
}

function bytesOf(hexText: string): Buffer {
  return Buffer.from(hexText.replace(/ /g, ''), 'hex');
}

/** extractExamples reads every marked example of the document, and lists the hex it found without a marker. */
function extractExamples(doc: string): { examples: Map<string, Found>; unmarked: string[] } {
  const lines = doc.split('\n');
  const examples = new Map<string, Found>();
  const unmarked: string[] = [];
  const claimed = new Set<number>();
  const add = (name: string, found: Found): void => {
    if (examples.has(name)) throw new Error(`PROTOCOL.md line ${found.at}: example ${name} is marked twice`);
    examples.set(name, found);
  };
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!-- examples?: ([a-z0-9 -]+) -->$/.exec(lines[i]!.trim());
    if (marker === null) continue;
    const names = marker[1]!.trim().split(/\s+/);
    let j = i + 1;
    while (j < lines.length && lines[j]!.trim() === '') j++;
    const first = lines[j] ?? '';
    if (first.startsWith('```')) {
      if (names.length !== 1) throw new Error(`PROTOCOL.md line ${i + 1}: a fenced block is one example, marked with ${names.length} names`);
      const blockLines: Buffer[] = [];
      for (j++; j < lines.length && !lines[j]!.startsWith('```'); j++) {
        const hexText = hexOfLine(lines[j]!);
        if (hexText === undefined) throw new Error(`PROTOCOL.md line ${j + 1}: a line of example ${names[0]} does not start with hex bytes`);
        blockLines.push(bytesOf(hexText));
        claimed.add(j);
      }
      add(names[0]!, { bytes: Buffer.concat(blockLines), lines: blockLines, at: i + 1 });
    } else if (first.startsWith('|')) {
      const spans: Array<{ text: string; line: number }> = [];
      for (; j < lines.length && lines[j]!.startsWith('|'); j++) {
        claimed.add(j);
        for (const span of lines[j]!.matchAll(/`([^`]*)`/g)) {
          if (HEX_RUN.test(span[1]!)) spans.push({ text: span[1]!, line: j + 1 });
        }
      }
      if (spans.length !== names.length) {
        throw new Error(`PROTOCOL.md line ${i + 1}: the table holds ${spans.length} hex examples, the marker names ${names.length}`);
      }
      names.forEach((name, k) => {
        const bytes = bytesOf(spans[k]!.text);
        add(name, { bytes, lines: [bytes], at: spans[k]!.line });
      });
    } else {
      throw new Error(`PROTOCOL.md line ${i + 1}: an example marker must precede a fenced block or a table`);
    }
  }
  // Hex the markers did not claim: a fenced block whose lines all start with hex, or a frame in a table.
  let inBlock = false;
  let blockStart = 0;
  let blockAllHex = true;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('```')) {
      if (!inBlock) {
        inBlock = true;
        blockStart = i;
        blockAllHex = true;
      } else {
        inBlock = false;
        if (blockAllHex && i > blockStart + 1 && !claimed.has(blockStart + 1)) unmarked.push(`fenced block at line ${blockStart + 1}`);
      }
      continue;
    }
    if (inBlock) {
      if (hexOfLine(line) === undefined) blockAllHex = false;
    } else if (line.startsWith('|') && !claimed.has(i)) {
      for (const span of line.matchAll(/`([^`]*)`/g)) {
        if (HEX_RUN.test(span[1]!) && span[1]!.startsWith('00 00 00 ')) unmarked.push(`table frame at line ${i + 1}`);
      }
    }
  }
  return { examples, unmarked };
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').replace(/(..)(?=.)/g, '$1 ');
}

function violationCode(bytes: Buffer): string | undefined {
  try {
    const decoder = new FrameDecoder(8388608);
    for (const payload of decoder.push(bytes)) decodeMessage(payload);
  } catch (error) {
    expect(error).to.be.instanceOf(RpcError);
    return (error as RpcError).code === 'RESOURCE_EXHAUSTED' ? 'RESOURCE_EXHAUSTED' : 'PROTOCOL_ERROR';
  }
  return undefined;
}

/** RawPeer is a hand-written client on a raw socket that keeps every byte the server sends. */
class RawPeer {
  received = Buffer.alloc(0);
  #read = 0;
  #closed = false;
  #wake: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.#wakeAll();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      this.#wakeAll();
    });
  }

  static async open(port: number): Promise<RawPeer> {
    const socket = netConnect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return new RawPeer(socket);
  }

  /** take resolves with the next `n` bytes the server sent. */
  async take(n: number): Promise<Buffer> {
    while (this.received.length < this.#read + n) {
      if (this.#closed) throw new Error(`the server closed after ${toHex(this.received.subarray(this.#read))}; ${n} bytes were expected`);
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
    this.#read += n;
    return this.received.subarray(this.#read - n, this.#read);
  }

  /** frame resolves with the next whole frame the server sent, its 4-byte header included. */
  async frame(): Promise<Buffer> {
    const header = await this.take(4);
    return Buffer.concat([header, await this.take(header.readUInt32BE(0))]);
  }

  /** closed resolves once the server has closed the socket, and rejects if it sent more bytes first. */
  async closedWithNothingMore(): Promise<void> {
    while (!this.#closed) await new Promise<void>((resolve) => this.#wake.push(resolve));
    expect(toHex(this.received.subarray(this.#read))).to.equal('');
  }

  #wakeAll(): void {
    const waiting = this.#wake;
    this.#wake = [];
    for (const resolve of waiting) resolve();
  }
}

describe('PROTOCOL.md examples', () => {
  const doc = readFileSync(PROTOCOL_MD, 'utf8');
  const { examples, unmarked } = extractExamples(doc);
  const bytes = (name: string): Buffer => {
    const found = examples.get(name);
    if (found === undefined) throw new Error(`PROTOCOL.md has no example marked ${name}`);
    return found.bytes;
  };

  it('marks every hex example, and every marked example is known to this test', () => {
    expect(unmarked, 'hex examples without a marker').to.deep.equal([]);
    expect([...examples.keys()].filter((name) => EXAMPLES[name] === undefined), 'markers without an entry in EXAMPLES').to.deep.equal([]);
    expect(Object.keys(EXAMPLES).filter((name) => !examples.has(name)), 'entries not found in PROTOCOL.md').to.deep.equal([]);
  });

  describe('each example is what it says', () => {
    for (const [name, example] of Object.entries(EXAMPLES)) {
      it(name, () => {
        const found = bytes(name);
        switch (example.kind) {
          case 'frame': {
            expect(found.length, 'a frame has a 4-byte header').to.be.at.least(5);
            expect(found.readUInt32BE(0), 'L is the payload length').to.equal(found.length - 4);
            expect(decodeMessage(found.subarray(4)), 'decodes to the stated message').to.deep.equal(example.message);
            if (example.alternative === undefined) expect(toHex(found), 'the reference encoder writes these bytes').to.equal(toHex(encodeMessage(example.message)));
            else expect(toHex(found)).to.not.equal(toHex(encodeMessage(example.message)));
            break;
          }
          case 'violation':
            expect(violationCode(found)).to.equal(example.code);
            break;
          case 'connect-head':
            expect(found.toString('latin1')).to.equal(encodeConnectRequest(example.path, example.host, example.headers).toString('latin1'));
            break;
          case 'connected':
            expect(found.toString('latin1')).to.equal(CONNECTED_RESPONSE);
            break;
          case 'values': {
            const lines = examples.get(name)!.lines;
            expect(lines.length).to.equal(example.values.length);
            example.values.forEach((value, k) => {
              // A value alone is read and written as the data of a ping [6, value] (92 06, then the value).
              const ping = Buffer.concat([Buffer.from([0x92, 0x06]), lines[k]!]);
              expect(decodeMessage(ping)).to.deep.equal({ type: 6, data: value });
              expect(toHex(lines[k]!)).to.equal(toHex(encodePayload({ type: 6, data: value }).subarray(2)));
            });
            break;
          }
        }
      });
    }
  });

  describe('the reference server sends the example frames', () => {
    const cleanup = new Cleanup();
    let server: EchoServer;

    beforeEach(async () => {
      server = await startEchoServer(cleanup);
    });
    afterEach(() => cleanup.run());

    const open = async (early: Buffer = Buffer.alloc(0)): Promise<RawPeer> => {
      const peer = cleanup.add(await RawPeer.open(server.port!), (each) => each.socket.destroy());
      peer.socket.write(Buffer.concat([bytes('connect-head'), early]));
      expect((await peer.take(CONNECTED_RESPONSE.length)).toString('latin1')).to.equal(CONNECTED_RESPONSE);
      return peer;
    };

    it('the example session of 1.1, byte for byte both ways', async () => {
      const peer = await RawPeer.open(server.port!);
      cleanup.add(peer, (each) => each.socket.destroy());
      peer.socket.write(Buffer.concat([bytes('connect-head'), bytes('session-add-request')]));
      expect(toHex(await peer.take(26))).to.equal(toHex(bytes('session-connected')));
      expect(toHex(await peer.frame())).to.equal(toHex(bytes('session-add-response')));
      peer.socket.write(Buffer.concat([bytes('session-notify'), bytes('session-count-request')]));
      expect(toHex(await peer.frame())).to.equal(toHex(bytes('session-count-response')));
      peer.socket.write(bytes('session-ping'));
      expect(toHex(await peer.frame())).to.equal(toHex(bytes('session-pong')));
      peer.socket.write(bytes('session-goaway'));
      await peer.closedWithNothingMore();
    });

    for (const [sent, answer] of EXCHANGES) {
      it(`${sent} is answered with ${answer}`, async () => {
        const peer = await open(bytes(sent));
        expect(toHex(await peer.frame())).to.equal(toHex(bytes(answer)));
      });
    }

    it('the cancel of 8.3', async () => {
      const peer = await open(bytes('cancel-request'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      peer.socket.write(bytes('cancel-cancel'));
      expect(toHex(await peer.frame())).to.equal(toHex(bytes('cancel-response')));
    });

    it('the graceful shutdown of 7.2', async () => {
      const peer = await open(Buffer.concat([bytes('shutdown-request-5'), bytes('shutdown-request-6')]));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closing = server.rpc.close();
      expect(toHex(await peer.frame())).to.equal(toHex(bytes('shutdown-goaway')));
      peer.socket.write(bytes('shutdown-request-7'));
      expect(toHex(await peer.frame())).to.equal(toHex(bytes('shutdown-response-5')));
      expect(toHex(await peer.frame())).to.equal(toHex(bytes('shutdown-response-6')));
      await peer.closedWithNothingMore();
      await closing;
    });

    it('the zero-length frame of 7.4, after request 3 was taken', async () => {
      const peer = await open(bytes('request-nil-params'));
      const answer = decodeMessage((await peer.frame()).subarray(4));
      expect(answer).to.deep.include({ type: 1, id: 3 });
      peer.socket.write(bytes('violation-zero-length'));
      expect(toHex(await peer.frame())).to.equal(toHex(bytes('violation-zero-length-goaway')));
      await peer.closedWithNothingMore();
    });

    it('the frame header over maxFrameSize of 3 and 7.4', async () => {
      const peer = await open(bytes('frame-header-too-large'));
      expect(toHex(await peer.frame())).to.equal(toHex(bytes('goaway-frame-too-large')));
      await peer.closedWithNothingMore();
    });
  });
});
