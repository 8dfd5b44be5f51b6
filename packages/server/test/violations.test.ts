import { expect } from 'chai';
import { type RpcError } from '@tunnelrpc/protocol';
import { MessageType, encodeMessage, type GoawayMessage } from '@tunnelrpc/protocol/internal';
import type { ServerOptions } from '@tunnelrpc/server';
import { expectGoaway, expectNoPeerBytes, expectResult, frame, hex, packValue, rawRequest, repeat, request } from '@tunnelrpc/test-kit';
import { cleanup, expectNoPollution, openTunnel, startServer } from './helpers.js';

type GoawayCode = 'PROTOCOL_ERROR' | 'RESOURCE_EXHAUSTED';

interface Violation {
  name: string;
  /** Bytes the hostile client writes after the handshake. */
  bytes: Buffer;
  code: GoawayCode;
  /** A fragment the goaway message must contain. */
  says?: string;
  options?: ServerOptions;
}

/**
 * expectViolation opens a bystander tunnel and a hostile one, writes `bytes` on the hostile one and asserts
 * goaway `code` then close, a message that quotes no peer bytes, no handler run, no prototype pollution, and a
 * bystander that still completes a call.
 */
async function expectViolation(bytes: Buffer, code: GoawayCode, options: ServerOptions = {}, says?: string): Promise<GoawayMessage> {
  const server = await startServer(options);
  const bystander = await openTunnel(server.port);
  const hostile = await openTunnel(server.port);
  await hostile.write(bytes);
  const goaway = expectGoaway(await hostile.next(), code);
  expect(goaway.lastId).to.equal(0);
  if (says !== undefined) expect(goaway.message).to.include(says);
  expectNoPeerBytes(goaway.message, bytes);
  await hostile.closed;
  expect(hostile.pending, 'nothing follows the goaway').to.equal(0);
  expect(server.probe.entries, 'no handler runs for a hostile frame').to.have.length(0);
  expectNoPollution();
  // T12 and every other case: the other connection decodes an honest frame exactly as before.
  expect(expectResult(await bystander.call(1, 'Svc.echo', [64]), 1)).to.deep.equal([64]);
  expect(expectResult(await bystander.call(2, 'Svc.add', { a: 2, b: 3 }), 2)).to.equal(5);
  expect(server.rpc.connectionCount).to.equal(1);
  return goaway;
}

/** inRequest builds a request frame for Svc.echo whose params are the given raw MessagePack bytes. */
function inRequest(params: string | Buffer): Buffer {
  return rawRequest(1, 'Svc.echo', typeof params === 'string' ? hex(params) : params);
}

const EXT = (type: string): string => `c7 04 ${type} 92 a1 61 a0`; // ext8 of 4 bytes: [ "a", "" ]

const CASES: Violation[] = [
  // Framing
  { name: 'a zero-length frame 00 00 00 00', bytes: hex('00 00 00 00'), code: 'PROTOCOL_ERROR', says: 'zero-length' },
  {
    name: 'a header declaring maxFrameSize + 1 (1025 against 1024), with no payload sent',
    bytes: hex('00 00 04 01'),
    code: 'RESOURCE_EXHAUSTED',
    says: 'maxFrameSize 1024',
    options: { maxFrameSize: 1024 },
  },
  { name: 'the header ff ff ff ff', bytes: hex('ff ff ff ff'), code: 'RESOURCE_EXHAUSTED', says: 'maxFrameSize' },
  { name: 'the header 80 00 00 00', bytes: hex('80 00 00 00'), code: 'RESOURCE_EXHAUSTED', says: 'maxFrameSize' },
  // MessagePack the pre-scan refuses
  { name: 'a truncated payload a5 61 62', bytes: frame(hex('a5 61 62')), code: 'PROTOCOL_ERROR' },
  { name: 'a truncated string inside a request', bytes: inRequest('a5 61 62'), code: 'PROTOCOL_ERROR' },
  {
    name: 'trailing bytes 01 02 03 after a valid request',
    bytes: frame(Buffer.concat([request(1, 'Svc.echo', 'x').subarray(4), hex('01 02 03')])),
    code: 'PROTOCOL_ERROR',
    says: 'left over',
  },
  { name: 'the never-used byte c1 as the payload', bytes: frame(hex('c1')), code: 'PROTOCOL_ERROR' },
  { name: 'the never-used byte c1 as params', bytes: inRequest('c1'), code: 'PROTOCOL_ERROR' },
  { name: 'a msgpackr record definition d4 72 40 in params', bytes: inRequest('d4 72 40'), code: 'PROTOCOL_ERROR' },
  { name: 'a msgpackr record definition as ext8 (c7 .. 72)', bytes: inRequest('c7 04 72 92 a1 61 a1 62'), code: 'PROTOCOL_ERROR' },
  {
    name: 'a structured-clone cycle d6 69 00000001 91 d6 70 00000001',
    bytes: rawRequest(1, 'Svc.echo', hex('d6 69 00 00 00 01'), hex('91 d6 70 00 00 00 01')),
    code: 'PROTOCOL_ERROR',
  },
  { name: 'a dangling structured-clone pointer d6 70 00000007', bytes: inRequest('d6 70 00 00 00 07'), code: 'PROTOCOL_ERROR' },
  { name: 'the RegExp extension 0x78', bytes: inRequest(EXT('78')), code: 'PROTOCOL_ERROR', says: 'extension' },
  { name: 'the Error extension 0x65', bytes: inRequest(EXT('65')), code: 'PROTOCOL_ERROR', says: 'extension' },
  { name: 'the Set extension 0x73', bytes: inRequest(EXT('73')), code: 'PROTOCOL_ERROR' },
  { name: 'the typed-array extension 0x74', bytes: inRequest(EXT('74')), code: 'PROTOCOL_ERROR' },
  { name: 'the BigInt extension 0x42', bytes: inRequest('d4 42 01'), code: 'PROTOCOL_ERROR' },
  { name: 'an unknown extension 0x05', bytes: inRequest('d4 05 01'), code: 'PROTOCOL_ERROR' },
  { name: 'a timestamp of a bad length c7 03 ff', bytes: inRequest('c7 03 ff 00 00 00'), code: 'PROTOCOL_ERROR' },
  { name: 'an array declaring 2^32-1 elements', bytes: inRequest('dd ff ff ff ff'), code: 'PROTOCOL_ERROR' },
  { name: 'a str32 declaring 2^32-1 bytes', bytes: inRequest('db ff ff ff ff'), code: 'PROTOCOL_ERROR' },
  { name: 'a map with an array as a key', bytes: inRequest('81 91 01 01'), code: 'PROTOCOL_ERROR' },
  {
    name: 'params nested 1000 arrays deep',
    bytes: inRequest(Buffer.concat([repeat(hex('91'), 1000), hex('c0')])),
    code: 'PROTOCOL_ERROR',
    says: 'maxDepth',
  },
  {
    name: 'params nested 100000 arrays deep',
    bytes: inRequest(Buffer.concat([repeat(hex('91'), 100_000), hex('c0')])),
    code: 'PROTOCOL_ERROR',
    says: 'maxDepth',
  },
  {
    name: 'more values than maxItemsPerFrame (100 against 16)',
    bytes: inRequest(Buffer.concat([hex('dc 00 64'), repeat(hex('01'), 100)])),
    code: 'RESOURCE_EXHAUSTED',
    says: 'maxItemsPerFrame 16',
    options: { maxItemsPerFrame: 16 },
  },
  // Message shape
  { name: 'a payload that is not an array (a map)', bytes: frame(packValue({ a: 1 })), code: 'PROTOCOL_ERROR' },
  { name: 'a payload that is nil', bytes: frame(hex('c0')), code: 'PROTOCOL_ERROR' },
  { name: 'an empty array', bytes: frame(hex('90')), code: 'PROTOCOL_ERROR' },
  { name: 'the unknown message type 10', bytes: frame(hex('92 0a 01')), code: 'PROTOCOL_ERROR', says: 'unknown message type' },
  { name: 'a stream message [4, 1] without its message', bytes: frame(hex('92 04 01')), code: 'PROTOCOL_ERROR', says: 'stream message [4, id, message] has 2 elements' },
  { name: 'a half-close [5, 1] for a stream no request opened', bytes: frame(hex('92 05 01')), code: 'PROTOCOL_ERROR', says: 'no request opened' },
  { name: 'a credit [9, 1, 1] for a stream no request opened', bytes: frame(hex('93 09 01 01')), code: 'PROTOCOL_ERROR', says: 'no request opened' },
  { name: 'a message type that is a string', bytes: frame(hex('92 a1 30 01')), code: 'PROTOCOL_ERROR' },
  { name: 'a request with 3 elements', bytes: frame(Buffer.concat([hex('93 00 01'), packValue('Svc.echo')])), code: 'PROTOCOL_ERROR' },
  { name: 'a request with 6 elements', bytes: rawRequest(1, 'Svc.echo', null, null, null), code: 'PROTOCOL_ERROR' },
  { name: 'a cancel without an id [3]', bytes: frame(hex('91 03')), code: 'PROTOCOL_ERROR' },
  { name: 'a ping without data [6]', bytes: frame(hex('91 06')), code: 'PROTOCOL_ERROR' },
  { name: 'the request id -1', bytes: rawRequest(hex('ff'), 'Svc.echo', null), code: 'PROTOCOL_ERROR', says: 'id' },
  { name: 'the request id 1.5', bytes: rawRequest(hex('cb 3f f8 00 00 00 00 00 00'), 'Svc.echo', null), code: 'PROTOCOL_ERROR', says: 'id' },
  { name: 'the request id "7"', bytes: rawRequest('7', 'Svc.echo', null), code: 'PROTOCOL_ERROR', says: 'id' },
  { name: 'the request id 2^32', bytes: rawRequest(hex('cf 00 00 00 01 00 00 00 00'), 'Svc.echo', null), code: 'PROTOCOL_ERROR', says: 'id' },
  { name: 'the request id 2^64-1', bytes: rawRequest(hex('cf ff ff ff ff ff ff ff ff'), 'Svc.echo', null), code: 'PROTOCOL_ERROR' },
  { name: 'a request without an id (nil)', bytes: rawRequest(null, 'Svc.echo', null), code: 'PROTOCOL_ERROR' },
  { name: 'the cancel id -1', bytes: frame(hex('92 03 ff')), code: 'PROTOCOL_ERROR' },
  { name: 'a method that is a number', bytes: rawRequest(1, 5, null), code: 'PROTOCOL_ERROR', says: 'method' },
  { name: 'a method that is nil', bytes: rawRequest(1, null, null), code: 'PROTOCOL_ERROR', says: 'method' },
  { name: 'a method that is bin', bytes: rawRequest(1, hex('c4 08 53 76 63 2e 65 63 68 6f'), null), code: 'PROTOCOL_ERROR', says: 'method' },
  { name: 'a notification whose method is a number', bytes: frame(hex('92 02 05')), code: 'PROTOCOL_ERROR' },
  { name: 'meta that is a number', bytes: rawRequest(1, 'Svc.echo', null, 5), code: 'PROTOCOL_ERROR', says: 'meta' },
  { name: 'meta that is an array', bytes: rawRequest(1, 'Svc.echo', null, [1]), code: 'PROTOCOL_ERROR', says: 'meta' },
  { name: 'meta.timeout -1', bytes: rawRequest(1, 'Svc.echo', null, { timeout: -1 }), code: 'PROTOCOL_ERROR', says: 'timeout' },
  { name: 'meta.timeout "100"', bytes: rawRequest(1, 'Svc.echo', null, { timeout: '100' }), code: 'PROTOCOL_ERROR', says: 'timeout' },
  { name: 'meta.headers with a number value', bytes: rawRequest(1, 'Svc.echo', null, { headers: { a: 1 } }), code: 'PROTOCOL_ERROR', says: 'headers' },
  {
    name: 'a response [1, id, nil, result] sent to the server',
    bytes: encodeMessage({ type: MessageType.Response, id: 1, result: 'hello' }),
    code: 'PROTOCOL_ERROR',
    says: 'response',
  },
];

describe('RpcServer protocol violations', () => {
  afterEach(cleanup);

  for (const { name, bytes, code, says, options } of CASES) {
    it(`sends goaway ${code} and closes for ${name}`, async () => {
      await expectViolation(bytes, code, options, says);
    });
  }

  it('sends goaway RESOURCE_EXHAUSTED for maxFrameSize + 1 from the 4 header bytes alone, naming size and limit', async () => {
    const goaway = await expectViolation(hex('00 00 04 01'), 'RESOURCE_EXHAUSTED', { maxFrameSize: 1024 });
    expect(goaway.message).to.include('1025').and.include('1024');
  });

  it('reports the last request it took as lastId in the goaway of a violation', async () => {
    const server = await startServer();
    const tunnel = await openTunnel(server.port);
    expect(expectResult(await tunnel.call(4, 'Svc.add', { a: 1, b: 2 }), 4)).to.equal(3);
    expect(expectResult(await tunnel.call(5, 'Svc.add', { a: 3, b: 4 }), 5)).to.equal(7);
    await tunnel.write(hex('00 00 00 00'));
    const goaway = expectGoaway(await tunnel.next(), 'PROTOCOL_ERROR');
    expect(goaway.lastId).to.equal(5);
    await tunnel.closed;
  });

  // Regression: FrameDecoder.push threw on the bad header and lost the payloads it had already completed from the
  // same chunk, so the outcome of frames 4 and 5 depended on how TCP split the stream. PROTOCOL.md 7.4: the
  // receiver stops at the violation; the frames before it are valid and are taken.
  it('answers the requests before a violating frame in the same write and reports the last of them as lastId', async () => {
    const server = await startServer();
    const tunnel = await openTunnel(server.port);
    await tunnel.write(Buffer.concat([request(4, 'Svc.add', { a: 1, b: 2 }), request(5, 'Svc.add', { a: 3, b: 4 }), hex('00 00 00 00')]));
    expect(expectResult(await tunnel.next(), 4)).to.equal(3);
    expect(expectResult(await tunnel.next(), 5)).to.equal(7);
    const goaway = expectGoaway(await tunnel.next(), 'PROTOCOL_ERROR');
    expect(goaway.lastId).to.equal(5);
    await tunnel.closed;
  });

  it('ignores frames that follow a violation in the same write', async () => {
    const server = await startServer();
    const tunnel = await openTunnel(server.port);
    await tunnel.write(Buffer.concat([frame(hex('c1')), request(1, 'Svc.add', { a: 1, b: 2 })]));
    expectGoaway(await tunnel.next(), 'PROTOCOL_ERROR');
    await tunnel.closed;
    expect(tunnel.pending).to.equal(0);
    expect(server.probe.entries).to.have.length(0);
  });

  it('sends goaway PROTOCOL_ERROR for a duplicate in-flight id and aborts the first call', async () => {
    const server = await startServer();
    const bystander = await openTunnel(server.port);
    const hostile = await openTunnel(server.port);
    await hostile.write(request(5, 'Svc.hold', null));
    const { ctx } = await server.probe.waitFor('hold');
    const duplicate = request(5, 'Svc.add', { a: 1, b: 2 });
    await hostile.write(duplicate);
    const goaway = expectGoaway(await hostile.next(), 'PROTOCOL_ERROR');
    expect(goaway.lastId).to.equal(5);
    expect(goaway.message).to.include('already in flight');
    expectNoPeerBytes(goaway.message, duplicate);
    await hostile.closed;
    // The first call is not answered after the goaway: the client fails it as the connection closes.
    expect(hostile.pending).to.equal(0);
    expect(ctx.signal.aborted).to.equal(true);
    expect((ctx.signal.reason as RpcError).code).to.equal('CANCELLED');
    expect(server.probe.entered('add')).to.equal(0);
    expect(expectResult(await bystander.call(1, 'Svc.echo', [64]), 1)).to.deep.equal([64]);
  });

  it('does not let a record definition on one connection change how another decodes (T12)', async () => {
    const server = await startServer();
    const other = await openTunnel(server.port);
    const hostile = await openTunnel(server.port);
    // d4 72 40: a msgpackr record definition for slot 0x40, which is also the positive fixint 64.
    await hostile.write(rawRequest(1, 'Svc.echo', hex('d4 72 40'), hex('92 a1 61 a1 62')));
    expectGoaway(await hostile.next(), 'PROTOCOL_ERROR');
    await hostile.closed;
    const honest = request(1, 'Svc.echo', [64]);
    expect(honest.includes(0x40)).to.equal(true);
    await other.write(honest);
    expect(expectResult(await other.next(), 1)).to.deep.equal([64]);
    // A new connection too.
    const fresh = await openTunnel(server.port);
    expect(expectResult(await fresh.call(1, 'Svc.echo', [64, { a: 64 }]), 1)).to.deep.equal([64, { a: 64 }]);
  });

  it('closes the connection without a goaway when the client sends goaway PROTOCOL_ERROR', async () => {
    const server = await startServer();
    const tunnel = await openTunnel(server.port);
    await tunnel.write(request(1, 'Svc.hang', null));
    const { ctx } = await server.probe.waitFor('hang');
    await tunnel.send({ type: MessageType.Goaway, lastId: 0, code: 'PROTOCOL_ERROR', message: 'you sent garbage' });
    await tunnel.closed;
    expect(tunnel.pending).to.equal(0);
    expect(ctx.signal.aborted).to.equal(true);
  });
});
