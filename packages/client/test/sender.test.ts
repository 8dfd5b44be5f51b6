/**
 * The client's sender (sender.ts): every request, notification and stream message is encoded, sized and shaped
 * here before a byte is written. Bytes in, verdict out: no sockets.
 */
import { expect } from 'chai';
import { RpcError } from '@tunnelrpc/protocol';
import { MessageType, decodeMessage, type Message, type PayloadParts } from '@tunnelrpc/protocol/internal';
import { expectThrows } from '@tunnelrpc/test-kit';
// White-box tests of internal modules read them from the package's build: they are not part of its public surface.
import { encodeOutgoing, encodeRequest } from '../dist/sender.js';

const LIMITS = { maxFrameSize: 1024, maxDepth: 32, maxItemsPerFrame: 1000 };

function request(params: unknown): Message {
  return { type: MessageType.Request, id: 7, method: 'Echo.echo', params, meta: { timeout: 1000 } };
}

function refusal(result: PayloadParts | RpcError): RpcError {
  expect(result, 'a refusal').to.be.instanceOf(RpcError);
  return result as RpcError;
}

function joined(payload: PayloadParts): Buffer {
  return payload instanceof Uint8Array ? Buffer.from(payload) : Buffer.concat(payload);
}

/** nestedArrays is `levels` one-element arrays around null. */
function nestedArrays(levels: number): unknown {
  let value: unknown = null;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

describe('encodeOutgoing', () => {
  it('returns the payload of a message that fits, which decodes back to the message', () => {
    const result = encodeOutgoing(request({ a: 1 }), 'request', 'Echo.echo', LIMITS.maxFrameSize, LIMITS);
    expect(result).to.not.be.instanceOf(RpcError);
    expect(decodeMessage(joined(result as PayloadParts))).to.deep.equal(request({ a: 1 }));
  });

  it('refuses params that cannot be encoded with INVALID_ARGUMENT, not run, naming the method', () => {
    const error = refusal(encodeOutgoing(request(2n ** 70n), 'request', 'Echo.echo', LIMITS.maxFrameSize, LIMITS));
    expect(error.code).to.equal('INVALID_ARGUMENT');
    expect(error.message).to.include('Echo.echo not sent: its params cannot be encoded');
    expect(error.mayHaveRun).to.equal(false);
    expect(error.cause).to.not.equal(undefined);
  });

  it('refuses a frame over maxFrameSize with RESOURCE_EXHAUSTED, not run, with the size and the limit', () => {
    const error = refusal(encodeOutgoing(request('x'.repeat(2000)), 'request', 'Echo.echo', LIMITS.maxFrameSize, LIMITS));
    expect(error.code).to.equal('RESOURCE_EXHAUSTED');
    expect(error.message).to.match(/^Echo\.echo not sent: frame of \d+ bytes to send exceeds maxFrameSize 1024/);
    expect(error.mayHaveRun).to.equal(false);
  });

  it('refuses nesting deeper than maxDepth, which the server would answer with a violation, as INVALID_ARGUMENT', () => {
    const error = refusal(encodeOutgoing(request(nestedArrays(40)), 'request', 'Echo.echo', LIMITS.maxFrameSize, LIMITS));
    expect(error.code).to.equal('INVALID_ARGUMENT');
    expect(error.message).to.include('Echo.echo not sent: its params break the wire limits');
    expect(error.message).to.include('raise maxDepth / maxItemsPerFrame on both peers');
    expect(error.mayHaveRun).to.equal(false);
  });

  it('refuses more values than maxItemsPerFrame as RESOURCE_EXHAUSTED', () => {
    const error = refusal(encodeOutgoing(request(Array.from({ length: 2000 }, (_, i) => i % 100)), 'request', 'Echo.echo', 1 << 20, LIMITS));
    expect(error.code).to.equal('RESOURCE_EXHAUSTED');
    expect(error.message).to.include('break the wire limits');
  });

  it('names a notification as such', () => {
    const message: Message = { type: MessageType.Notification, method: 'Log.write', params: 2n ** 70n };
    const error = refusal(encodeOutgoing(message, 'notification', 'Log.write', LIMITS.maxFrameSize, LIMITS));
    expect(error.message).to.include('notification Log.write not sent');
    expect(error.mayHaveRun).to.equal(false);
  });

  it("checks a stream message against the server's maxMessageSize, and says the stream (which ran) was cancelled", () => {
    const message: Message = { type: MessageType.StreamMessage, id: 3, message: 'y'.repeat(300) };
    const error = refusal(encodeOutgoing(message, 'stream message', 'Chat.talk', 100, LIMITS));
    expect(error.code).to.equal('RESOURCE_EXHAUSTED');
    expect(error.message).to.include("for Chat.talk exceeds the server's maxMessageSize 100");
    expect(error.message).to.include('The stream was cancelled');
    expect(error.mayHaveRun).to.equal(true);
    expect(error.data).to.include({ maxMessageSize: 100 });
  });

  it('refuses a stream message the server would refuse for its shape, as a stream that may have run', () => {
    const message: Message = { type: MessageType.StreamMessage, id: 3, message: nestedArrays(40) };
    const error = refusal(encodeOutgoing(message, 'stream message', 'Chat.talk', 1 << 20, LIMITS));
    expect(error.message).to.include('a message for Chat.talk not sent: its params break the wire limits');
    expect(error.mayHaveRun).to.equal(true);
  });

  it('never throws, even for a value msgpack cannot write', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expectThrows(() => {
      const result = encodeOutgoing(request(cyclic), 'request', 'Echo.echo', LIMITS.maxFrameSize, LIMITS);
      if (result instanceof RpcError) throw result;
    }, 'INVALID_ARGUMENT', 'Echo.echo not sent');
  });
});

describe('encodeRequest (a unary request from its parts, no message object)', () => {
  const cases: Array<[string, unknown]> = [
    ['fit', { a: 1, b: 'two', c: [3] }],
    ['cannot be encoded', 2n ** 70n],
    ['are over maxFrameSize', 'x'.repeat(2000)],
    ['nest deeper than maxDepth', nestedArrays(40)],
    ['hold a byte array', new Uint8Array(600)],
  ];
  for (const [what, params] of cases) {
    it(`gives the bytes or the refusal encodeOutgoing gives, for params that ${what}`, () => {
      const direct = encodeRequest(7, 'Echo.echo', params, 1000, undefined, LIMITS.maxFrameSize, LIMITS);
      const general = encodeOutgoing(request(params), 'request', 'Echo.echo', LIMITS.maxFrameSize, LIMITS);
      if (general instanceof RpcError) {
        const error = refusal(direct);
        expect([error.code, error.message, error.mayHaveRun]).to.deep.equal([general.code, general.message, general.mayHaveRun]);
        return;
      }
      expect(direct).to.not.be.instanceOf(RpcError);
      expect(joined(direct as PayloadParts).equals(joined(general))).to.equal(true);
    });
  }

  it('writes headers into meta, as the general path does', () => {
    const headers = { 'x-tenant': 'acme' };
    const direct = encodeRequest(9, 'Echo.echo', null, 250, headers, LIMITS.maxFrameSize, LIMITS);
    expect(decodeMessage(joined(direct as PayloadParts))).to.deep.equal({ type: MessageType.Request, id: 9, method: 'Echo.echo', params: null, meta: { timeout: 250, headers } });
  });
});
