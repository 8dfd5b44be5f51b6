import { expect } from 'chai';
import { RpcError } from '@tunnelrpc/protocol';
import { MessageQueue } from '@tunnelrpc/protocol/internal';

function queue(): { q: MessageQueue<number>; taken: number[]; abandoned: number[] } {
  const taken: number[] = [];
  const abandoned: number[] = [];
  const q: MessageQueue<number> = new MessageQueue<number>({ taken: () => taken.push(q.size), abandoned: () => abandoned.push(1) });
  return { q, taken, abandoned };
}

describe('MessageQueue', () => {
  it('yields pushed messages in order and ends after the queued ones', async () => {
    const { q, taken } = queue();
    q.push(1);
    q.push(2);
    q.end();
    const got: number[] = [];
    for await (const value of q) got.push(value);
    expect(got).to.deep.equal([1, 2]);
    expect(taken).to.have.length(2);
  });

  it('hands a message straight to a waiting reader and tells the owner it was taken', async () => {
    const { q, taken } = queue();
    const next = q.next();
    q.push(5);
    expect(await next).to.deep.equal({ value: 5, done: false });
    expect(taken).to.have.length(1);
  });

  it('rejects the reader with the error of fail(), dropping what was queued', async () => {
    const { q } = queue();
    q.push(1);
    const reason = new RpcError('CANCELLED', 'cancelled');
    q.fail(reason);
    let caught: unknown;
    try {
      for await (const value of q) expect.fail(`got ${value}`);
    } catch (error) {
      caught = error;
    }
    expect(caught).to.equal(reason);
  });

  it('tells the owner when the reader breaks early, and only then', async () => {
    const { q, abandoned } = queue();
    q.push(1);
    q.push(2);
    for await (const value of q) {
      expect(value).to.equal(1);
      break;
    }
    expect(abandoned).to.have.length(1);
    expect(q.closed).to.equal(true);
    q.push(3);
    expect(q.size, 'a closed queue drops what is pushed').to.equal(0);
    const ended = queue();
    ended.q.end();
    for await (const value of ended.q) expect.fail(`got ${value}`);
    expect(ended.abandoned).to.have.length(0);
  });
});
