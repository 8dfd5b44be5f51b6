import { expect } from 'chai';
import {
  ERROR_CODES,
  RpcError,
  codeFromHttpStatus,
  decodeMessage,
  encodeMessage,
  fromWireError,
  goawayCodeOf,
  isErrorCode,
  protocolViolation,
  toWireError,
  type ErrorCode,
  type ResponseMessage,
} from '@tunnelrpc/protocol';

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
