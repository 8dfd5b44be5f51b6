import { expect } from 'chai';
import { ERROR_CODES, RpcError, isErrorCode, type ErrorCode } from '@tunnelrpc/protocol';
import {
  codeFromHttpStatus,
  decodeMessage,
  encodeMessage,
  fromWireError,
  goawayCodeOf,
  protocolViolation,
  toWireError,
  type ResponseMessage,
} from '@tunnelrpc/protocol/internal';
import { hex } from '@tunnelrpc/test-kit';

describe('ERROR_CODES', () => {
  it('lists the 16 wire-v1 codes in order', () => {
    expect(ERROR_CODES).to.deep.equal([
      'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
      'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
      'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
    ]);
  });
});

describe('isErrorCode', () => {
  it('is true for every listed code and false for anything else', () => {
    for (const code of ERROR_CODES) expect(isErrorCode(code), code).to.equal(true);
    for (const value of ['OK', 'internal', 'PROTOCOL_ERROR', '', 'toString', '__proto__', 13, null, undefined, {}]) {
      expect(isErrorCode(value), String(value)).to.equal(false);
    }
  });
});

describe('RpcError', () => {
  describe('constructor', () => {
    it('keeps code, message, data and cause', () => {
      const cause = new Error('socket hang up');
      const error = new RpcError('UNAVAILABLE', 'connection lost', { status: 503 }, { cause });
      expect(error.code).to.equal('UNAVAILABLE');
      expect(error.message).to.equal('connection lost');
      expect(error.data).to.deep.equal({ status: 503 });
      expect(error.cause).to.equal(cause);
    });

    it('is an Error named RpcError with a stack', () => {
      const error = new RpcError('INTERNAL', 'x');
      expect(error).to.be.instanceOf(Error);
      expect(error).to.be.instanceOf(RpcError);
      expect(error.name).to.equal('RpcError');
      expect(String(error)).to.equal('RpcError: x');
      expect(error.stack).to.be.a('string').and.include('RpcError: x');
    });

    it('leaves data and cause undefined when not given', () => {
      const error = new RpcError('NOT_FOUND', 'no such thing');
      expect(error.data).to.equal(undefined);
      expect(error.cause).to.equal(undefined);
      expect(Object.hasOwn(error, 'cause')).to.equal(false);
    });
  });

  describe('.from', () => {
    it('returns an RpcError as the same object', () => {
      const error = new RpcError('NOT_FOUND', 'x');
      expect(RpcError.from(error)).to.equal(error);
      expect(RpcError.from(error, 'INTERNAL')).to.equal(error);
    });

    it('turns an AbortError DOMException into CANCELLED, keeping it as cause', () => {
      const reason = new DOMException('This operation was aborted', 'AbortError');
      const error = RpcError.from(reason);
      expect(error.code).to.equal('CANCELLED');
      expect(error.cause).to.equal(reason);
      expect(error.message).to.include('cancelled');
    });

    it('turns the reason of AbortSignal.abort() into CANCELLED', () => {
      const signal = AbortSignal.abort();
      expect(RpcError.from(signal.reason).code).to.equal('CANCELLED');
    });

    it('turns a TimeoutError DOMException into DEADLINE_EXCEEDED, keeping it as cause', () => {
      const reason = new DOMException('The operation timed out', 'TimeoutError');
      const error = RpcError.from(reason, 'INTERNAL');
      expect(error.code).to.equal('DEADLINE_EXCEEDED');
      expect(error.cause).to.equal(reason);
    });

    it('turns an Error named AbortError (as from node:timers/promises) into CANCELLED', () => {
      const reason = Object.assign(new Error('aborted'), { name: 'AbortError' });
      expect(RpcError.from(reason).code).to.equal('CANCELLED');
    });

    it('turns a plain Error into UNKNOWN with its message, keeping it as cause', () => {
      const reason = new TypeError('x is not a function');
      const error = RpcError.from(reason);
      expect(error).to.be.instanceOf(RpcError);
      expect(error.code).to.equal('UNKNOWN');
      expect(error.message).to.equal('x is not a function');
      expect(error.cause).to.equal(reason);
      expect(error.data).to.equal(undefined);
    });

    it('uses the code it is given for anything that is not an abort', () => {
      expect(RpcError.from(new Error('boom'), 'UNAVAILABLE').code).to.equal('UNAVAILABLE');
      expect(RpcError.from('boom', 'INTERNAL').code).to.equal('INTERNAL');
    });

    it('turns a thrown string into UNKNOWN with that string as message and cause', () => {
      const error = RpcError.from('boom');
      expect(error.code).to.equal('UNKNOWN');
      expect(error.message).to.equal('boom');
      expect(error.cause).to.equal('boom');
    });

    it('turns undefined, null and numbers into UNKNOWN', () => {
      for (const reason of [undefined, null, 42]) {
        const error = RpcError.from(reason);
        expect(error.code).to.equal('UNKNOWN');
        expect(error.message).to.equal(String(reason));
      }
    });
  });
});

describe('protocolViolation', () => {
  it('builds an INTERNAL error whose message starts with "protocol violation: "', () => {
    const error = protocolViolation('zero-length frame', { at: 1 });
    expect(error).to.be.instanceOf(RpcError);
    expect(error.code).to.equal('INTERNAL');
    expect(error.message).to.equal('protocol violation: zero-length frame');
    expect(error.data).to.deep.equal({ at: 1 });
  });
});

describe('goawayCodeOf', () => {
  it('gives RESOURCE_EXHAUSTED for a limit and PROTOCOL_ERROR for everything else', () => {
    expect(goawayCodeOf(new RpcError('RESOURCE_EXHAUSTED', 'x'))).to.equal('RESOURCE_EXHAUSTED');
    expect(goawayCodeOf(protocolViolation('x'))).to.equal('PROTOCOL_ERROR');
    for (const code of ERROR_CODES.filter((c) => c !== 'RESOURCE_EXHAUSTED')) {
      expect(goawayCodeOf(new RpcError(code, 'x')), code).to.equal('PROTOCOL_ERROR');
    }
  });
});

describe('codeFromHttpStatus', () => {
  it('maps the statuses of a refused CONNECT as gRPC does', () => {
    const table: [number, ErrorCode][] = [
      [401, 'UNAUTHENTICATED'],
      [403, 'PERMISSION_DENIED'],
      [404, 'UNIMPLEMENTED'],
      [405, 'UNIMPLEMENTED'],
      [408, 'DEADLINE_EXCEEDED'],
      [429, 'RESOURCE_EXHAUSTED'],
      [502, 'UNAVAILABLE'],
      [503, 'UNAVAILABLE'],
      [504, 'UNAVAILABLE'],
    ];
    for (const [status, code] of table) expect(codeFromHttpStatus(status), String(status)).to.equal(code);
  });

  it('maps every other status to UNKNOWN', () => {
    for (const status of [0, 100, 200, 301, 400, 402, 406, 418, 431, 500, 501, 505, 599, 999]) {
      expect(codeFromHttpStatus(status), String(status)).to.equal('UNKNOWN');
    }
  });
});

describe('toWireError', () => {
  it('writes code and message, and data only when set', () => {
    expect(toWireError(new RpcError('NOT_FOUND', 'no'))).to.deep.equal({ code: 'NOT_FOUND', message: 'no' });
    expect(toWireError(new RpcError('NOT_FOUND', 'no'))).to.not.have.property('data');
    expect(toWireError(new RpcError('INVALID_ARGUMENT', 'bad', { issues: [] }))).to.deep.equal({
      code: 'INVALID_ARGUMENT', message: 'bad', data: { issues: [] },
    });
  });

  it('does not send the cause', () => {
    const wire = toWireError(new RpcError('INTERNAL', 'x', undefined, { cause: new Error('secret') }));
    expect(JSON.stringify(wire)).to.not.include('secret');
  });
});

describe('fromWireError', () => {
  it('rebuilds an RpcError with a known code', () => {
    const error = fromWireError({ code: 'PERMISSION_DENIED', message: 'nope', data: { role: 'guest' } });
    expect(error).to.be.instanceOf(RpcError);
    expect(error.code).to.equal('PERMISSION_DENIED');
    expect(error.message).to.equal('nope');
    expect(error.data).to.deep.equal({ role: 'guest' });
  });

  it('turns an unknown code into UNKNOWN, keeping the original code and data', () => {
    const error = fromWireError({ code: 'TEAPOT', message: 'short and stout', data: 1 });
    expect(error.code).to.equal('UNKNOWN');
    expect(error.message).to.equal('TEAPOT: short and stout');
    expect(error.data).to.deep.equal({ code: 'TEAPOT', data: 1 });
  });

  it('does not treat a lower-case or inherited name as a code', () => {
    expect(fromWireError({ code: 'not_found', message: 'x' }).code).to.equal('UNKNOWN');
    expect(fromWireError({ code: 'constructor', message: 'x' }).code).to.equal('UNKNOWN');
  });

  it('round-trips every code with toWireError', () => {
    for (const code of ERROR_CODES) {
      const original = new RpcError(code, `message of ${code}`, { n: 1 });
      const rebuilt = fromWireError(toWireError(original));
      expect([rebuilt.code, rebuilt.message, rebuilt.data]).to.deep.equal([code, `message of ${code}`, { n: 1 }]);
    }
  });

  it('round-trips through a response frame', () => {
    const original = new RpcError('FAILED_PRECONDITION', 'account locked', { until: 1700000000 });
    const frame = encodeMessage({ type: 1, id: 9, error: toWireError(original), result: undefined });
    const decoded = decodeMessage(frame.subarray(4)) as ResponseMessage;
    expect(decoded.error).to.not.equal(undefined);
    const rebuilt = fromWireError(decoded.error!);
    expect([rebuilt.code, rebuilt.message, rebuilt.data]).to.deep.equal(['FAILED_PRECONDITION', 'account locked', { until: 1700000000 }]);
  });
});

describe('mayHaveRun', () => {
  it('is a typed field set by the constructor option, apart from the data', () => {
    const error = new RpcError('ABORTED', 'x', ['a'], { mayHaveRun: true });
    expect(error.mayHaveRun).to.equal(true);
    expect(error.data).to.deep.equal(['a']);
    expect(new RpcError('ABORTED', 'x')).to.not.have.property('mayHaveRun');
  });

  it('is read from map data when the option is left out (the older place), and from no other data', () => {
    expect(new RpcError('UNAVAILABLE', 'x', { mayHaveRun: false }).mayHaveRun).to.equal(false);
    expect(new RpcError('UNAVAILABLE', 'x', { mayHaveRun: 'no' }).mayHaveRun).to.equal(undefined);
    expect(new RpcError('UNAVAILABLE', 'x', [{ mayHaveRun: false }]).mayHaveRun).to.equal(undefined);
    expect(new RpcError('UNAVAILABLE', 'x', { mayHaveRun: false }, { mayHaveRun: true }).mayHaveRun).to.equal(true);
  });

  const userData: Array<[string, unknown]> = [['array', ['a']], ['string', 'why'], ['number', 42], ['nested map', { a: { mayHaveRun: false } }]];
  for (const [kind, data] of userData) {
    it(`crosses the wire in its own key, leaving ${kind} data as the user gave it`, () => {
      const original = new RpcError('ABORTED', 'x', data, { mayHaveRun: true });
      const wire = toWireError(original);
      if (kind === 'nested map') expect(wire.data).to.deep.equal({ a: { mayHaveRun: false }, mayHaveRun: true });
      else expect(wire.data).to.deep.equal(data);
      expect(wire.mayHaveRun).to.equal(true);
      const frame = encodeMessage({ type: 1, id: 9, error: wire, result: undefined });
      const rebuilt = fromWireError((decodeMessage(frame.subarray(4)) as ResponseMessage).error!);
      expect(rebuilt.mayHaveRun).to.equal(true);
      expect(rebuilt.data).to.deep.equal(wire.data);
    });
  }

  it('is also written into map data and absent data, for peers that read only the older place', () => {
    expect(toWireError(new RpcError('ABORTED', 'x', undefined, { mayHaveRun: false }))).to.deep.equal({ code: 'ABORTED', message: 'x', data: { mayHaveRun: false }, mayHaveRun: false });
    expect(toWireError(new RpcError('ABORTED', 'x', { widget: 7 }, { mayHaveRun: true }))).to.deep.equal({ code: 'ABORTED', message: 'x', data: { widget: 7, mayHaveRun: true }, mayHaveRun: true });
    // A false the user wrote in the map is replaced: the flag describes this hop only.
    expect(toWireError(new RpcError('ABORTED', 'x', { mayHaveRun: false }, { mayHaveRun: true })).data).to.deep.equal({ mayHaveRun: true });
  });

  it('is read from data.mayHaveRun of a peer that sends only the older place, and the own key wins', () => {
    expect(fromWireError({ code: 'ABORTED', message: 'x', data: { mayHaveRun: false } }).mayHaveRun).to.equal(false);
    expect(fromWireError({ code: 'ABORTED', message: 'x', data: { mayHaveRun: false }, mayHaveRun: true }).mayHaveRun).to.equal(true);
    expect(fromWireError({ code: 'TEAPOT', message: 'x', data: { mayHaveRun: false } }).mayHaveRun).to.equal(false);
    expect(fromWireError({ code: 'ABORTED', message: 'x', data: ['a'] })).to.not.have.property('mayHaveRun');
  });

  it('decodes the key from the error map (hex), and ignores a value there that is not a boolean', () => {
    // [1, 2, {code: "ABORTED", message: "x", mayHaveRun: true}, nil]
    const withFlag = hex('94 01 02 83 a4 63 6f 64 65 a7 41 42 4f 52 54 45 44 a7 6d 65 73 73 61 67 65 a1 78 aa 6d 61 79 48 61 76 65 52 75 6e c3 c0');
    expect((decodeMessage(withFlag) as ResponseMessage).error).to.deep.equal({ code: 'ABORTED', message: 'x', mayHaveRun: true });
    // The same with mayHaveRun: 1 (a positive fixint): an unknown form, ignored like an unknown key.
    const withOne = hex('94 01 02 83 a4 63 6f 64 65 a7 41 42 4f 52 54 45 44 a7 6d 65 73 73 61 67 65 a1 78 aa 6d 61 79 48 61 76 65 52 75 6e 01 c0');
    expect((decodeMessage(withOne) as ResponseMessage).error).to.deep.equal({ code: 'ABORTED', message: 'x' });
  });
});

describe('RpcError.from regressions', () => {
  it('turns an object without a string form into UNKNOWN instead of throwing', () => {
    for (const reason of [Object.create(null) as object, { toString(): string { throw new Error('no'); } }]) {
      let error: RpcError | undefined;
      expect(() => {
        error = RpcError.from(reason);
      }).to.not.throw();
      expect(error?.code).to.equal('UNKNOWN');
    }
  });
});
