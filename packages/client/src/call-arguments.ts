/**
 * A call's arguments, checked on the client before anything is written: the server treats a bad one as a violation
 * or a limit and would close the tunnel under every other call, so each check fails that call alone, unsent
 * (`mayHaveRun: false`), with words that name the value and the fix.
 */
import { RpcError } from '@tunnelrpc/protocol';
import { MAX_TIMER_MS, lowerCaseHeaderName } from '@tunnelrpc/protocol/internal';
import type { ResolvedClientOptions } from './options.js';

/** checkMethod refuses a method that is not a string: on the wire it is a violation (PROTOCOL.md 5.1). @internal */
export function checkMethod(notification: boolean, method: unknown): RpcError | undefined {
  if (typeof method === 'string') return undefined;
  return new RpcError('INVALID_ARGUMENT', `the method of a ${notification ? 'notification' : 'call'} must be a string such as "Service.method"; got ${typeof method}`, { mayHaveRun: false });
}

/** toAsyncIterator reads a stream's source, async or not; refuses anything else. @internal */
export function toAsyncIterator(source: AsyncIterable<unknown> | Iterable<unknown>): AsyncIterator<unknown> {
  if (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return (source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  if (typeof (source as Iterable<unknown> | null)?.[Symbol.iterator] !== 'function') {
    throw new RpcError('INVALID_ARGUMENT', 'the messages of a client or bidi stream must be an AsyncIterable or an Iterable', { mayHaveRun: false });
  }
  const iterator = (source as Iterable<unknown>)[Symbol.iterator]();
  return {
    next: () => Promise.resolve(iterator.next()),
    return: () => Promise.resolve(iterator.return?.() ?? { value: undefined, done: true }),
  };
}

/**
 * checkTimeout gives a call's timeout in whole ms, or the error that fails it: NaN or a non-number is a caller's bug
 * (INVALID_ARGUMENT); zero or less is a deadline already passed, as in `ctx.deadline - Date.now()`
 * (DEADLINE_EXCEEDED, unsent); a fraction is rounded up, and anything past setTimeout's ceiling is clamped to it.
 * @internal
 */
export function checkTimeout(what: string, timeout: unknown): number | RpcError {
  if (typeof timeout !== 'number' || Number.isNaN(timeout)) {
    return new RpcError('INVALID_ARGUMENT', `timeout of ${what} must be a number of ms; got ${typeof timeout === 'number' ? 'NaN' : typeof timeout}`, { mayHaveRun: false });
  }
  if (timeout <= 0) {
    return new RpcError('DEADLINE_EXCEEDED', `${what} not sent: its deadline had passed already (timeout ${timeout} ms); it did not run`, { mayHaveRun: false });
  }
  return Math.min(Math.ceil(timeout), MAX_TIMER_MS);
}

/**
 * checkHeaders gives a call's headers as sent (names in lower case), or the error that fails that call alone:
 * everything the server would refuse as a violation or a limit is caught here, before a byte is written. @internal
 */
export function checkHeaders(what: string, headers: unknown, options: ResolvedClientOptions): Record<string, string> | undefined | RpcError {
  if (headers === undefined) return undefined;
  const bad = (why: string): RpcError => new RpcError('INVALID_ARGUMENT', `${what} not sent: ${why}`, { mayHaveRun: false });
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return bad('headers must be a plain object of string names to string values');
  const proto: unknown = Object.getPrototypeOf(headers);
  if (proto !== Object.prototype && proto !== null) return bad('headers must be a plain object of string names to string values (not a Map, Headers or class instance)');
  const names = Object.keys(headers);
  if (names.length > options.maxHeaderCount) {
    return bad(`${names.length} headers exceed maxHeaderCount ${options.maxHeaderCount}; send fewer or raise maxHeaderCount on both peers`);
  }
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const name of names) {
    let value: unknown;
    try {
      value = (headers as Record<string, unknown>)[name];
    } catch (error) {
      return bad(`reading header ${JSON.stringify(name.slice(0, 64))} threw (${error instanceof Error ? error.message : String(error)})`);
    }
    if (typeof value !== 'string') return bad(`header ${JSON.stringify(name.slice(0, 64))} is a ${value === null ? 'null' : typeof value}; header values must be strings`);
    const lower = lowerCaseHeaderName(name);
    if (Object.hasOwn(out, lower)) return bad(`headers hold ${JSON.stringify(lower.slice(0, 64))} twice when names are compared in lower case, as HTTP does; keep one`);
    bytes += Buffer.byteLength(lower, 'utf8') + Buffer.byteLength(value, 'utf8');
    if (bytes > options.maxHeaderBytes) {
      return bad(`headers exceed maxHeaderBytes ${options.maxHeaderBytes} (names and values, UTF-8); send less or raise maxHeaderBytes on both peers`);
    }
    // defineProperty: a name such as "__proto__" is an ordinary header, never the object's prototype.
    Object.defineProperty(out, lower, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
