/**
 * Call observers: the metrics stage of the call pipeline. An interceptor joins a call's path (a closure and a
 * promise per call, a handler made asynchronous on the server); an observer only hears that a call started and
 * how it ended, in plain synchronous calls (the ends of calls answered together at the end of their tick), with the
 * same method object every time, so that counting a call costs a few additions. The server tells them about every call it admits, the client about every call its caller makes,
 * streams and notifications included, however the call ends (answered, failed, cancelled, timed out or cut off
 * with its tunnel). A stage without observers costs nothing.
 */
import type { ErrorCode } from './error-codes.js';
import type { MethodKind } from './method-spec.js';
import { splitMethod } from './interceptor.js';
import { describeOptionValue, optionError } from './option-checks.js';

/** CallType names a kind of call as metrics label it (go-grpc-middleware's names, plus notification). */
export type CallType = 'unary' | 'notification' | 'server_stream' | 'client_stream' | 'bidi_stream';

/** CALL_TYPES lists every CallType. @internal */
export const CALL_TYPES: readonly CallType[] = Object.freeze(['unary', 'notification', 'server_stream', 'client_stream', 'bidi_stream']);

const STREAM_CALL_TYPES: Readonly<Record<Exclude<MethodKind, 'unary'>, CallType>> = { serverStream: 'server_stream', clientStream: 'client_stream', bidiStream: 'bidi_stream' };

/** callTypeOf is the CallType of a call of `kind`: a unary method's call is a notification when `notification`. @internal */
export function callTypeOf(kind: MethodKind, notification: boolean): CallType {
  if (kind === 'unary') return notification ? 'notification' : 'unary';
  return STREAM_CALL_TYPES[kind];
}

/**
 * ObservedMethod is what an observer learns about a call: one frozen object per method and call type for the life
 * of the server or client, so an observer can key its counters by the object itself.
 */
export interface ObservedMethod {
  /** The wire name, "Service.method". */
  readonly method: string;
  readonly service: string;
  readonly name: string;
  readonly type: CallType;
  /**
   * False for a method the server has no handler for (seen only when interceptors are set, which may answer it)
   * and for a client's methods past its first 10,000 names: label them as one, or a caller's typos grow a
   * series per name.
   */
  readonly registered: boolean;
}

/**
 * CallObserver hears each call's start and end (ServerOptions.observers, ClientOptions.observers). Its methods run
 * on the call path, synchronously: keep them to counting. A throw is caught (logged on the server) and costs
 * nothing else.
 */
export interface CallObserver {
  /** The call was admitted (server) or made by its caller (client, which may then wait for a tunnel to send it). */
  callStarted(method: ObservedMethod): void;
  /**
   * The call ended with the code its caller gets ('OK' for a result), `seconds` after it started. Calls answered
   * together (the server's answers to one read, the client's answers in one read) are told together at the end of
   * that tick, when their answers leave or reach their callers, with one clock read for all of them.
   */
  callEnded(method: ObservedMethod, code: ErrorCode | 'OK', seconds: number): void;
  /** A stream message was received or sent on a stream of `method`. */
  streamMessage?(method: ObservedMethod, direction: 'received' | 'sent'): void;
}

/** observedMethod makes the frozen ObservedMethod of a wire name and call type. @internal */
export function observedMethod(method: string, type: CallType, registered: boolean): ObservedMethod {
  const { service, name } = splitMethod(method);
  return Object.freeze({ method, service, name, type, registered });
}

const OBSERVER_SHAPE = 'an array of call observers, { callStarted(method) {}, callEnded(method, code, seconds) {} }';

/** checkObservers validates the `observers` option: each entry has callStarted and callEnded functions. @internal */
export function checkObservers(name: string, value: unknown): readonly CallObserver[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw optionError(name, OBSERVER_SHAPE, value);
  const bad = value.findIndex((each: unknown) => {
    if (typeof each !== 'object' || each === null) return true;
    const observer = each as Partial<Record<keyof CallObserver, unknown>>;
    return typeof observer.callStarted !== 'function' || typeof observer.callEnded !== 'function' || (observer.streamMessage !== undefined && typeof observer.streamMessage !== 'function');
  });
  if (bad !== -1) throw optionError(name, OBSERVER_SHAPE, value, `item ${bad} is ${describeOptionValue(value[bad])} without those functions`);
  return Object.freeze([...(value as CallObserver[])]);
}

/**
 * Observers runs a side's observers, each in its own try, so that one observer's bug neither stops the others nor
 * reaches the call. `failed` hears each throw (the server logs it). @internal
 */
export class Observers {
  readonly #list: readonly CallObserver[];
  readonly #failed: (error: unknown, hook: string) => void;
  // Ends waiting for the end of the tick (endedSoon): the first #soonCount entries of parallel arrays that are
  // reused from tick to tick (they hold only method objects, code names and numbers, nothing of a call's).
  readonly #soonMethods: ObservedMethod[] = [];
  readonly #soonCodes: (ErrorCode | 'OK')[] = [];
  readonly #soonStarts: number[] = [];
  #soonCount = 0;
  #flushScheduled = false;

  constructor(list: readonly CallObserver[], failed: (error: unknown, hook: string) => void) {
    this.#list = list;
    this.#failed = failed;
  }

  /**
   * started tells every observer. The caller keeps the start time (performance.now() based) for ended(): the
   * server reads the clock once per chunk, for every call that arrived in it.
   */
  started(method: ObservedMethod): void {
    const list = this.#list;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!.callStarted(method);
      } catch (error) {
        this.#report(error, 'callStarted');
      }
    }
  }

  /** ended tells every observer now how the call that started at `startedAt` ended. */
  ended(method: ObservedMethod, code: ErrorCode | 'OK', startedAt: number): void {
    this.#tell(method, code, (performance.now() - startedAt) / 1000);
  }

  /**
   * endedSoon tells the observers at the end of the tick, for a call whose answer was just queued (server) or just
   * read (client): the answers of one tick leave, or reach their callers, together, so they share one clock read
   * instead of one each. For answers settled in a socket read, promise callbacks run after it: a caller sees its
   * result after its observers heard.
   */
  endedSoon(method: ObservedMethod, code: ErrorCode | 'OK', startedAt: number): void {
    const at = this.#soonCount++;
    this.#soonMethods[at] = method;
    this.#soonCodes[at] = code;
    this.#soonStarts[at] = startedAt;
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(flushEnds, this);
  }

  /** flushEnds tells what endedSoon queued. @internal */
  flushEnds(): void {
    this.#flushScheduled = false;
    const methods = this.#soonMethods;
    const codes = this.#soonCodes;
    const starts = this.#soonStarts;
    const now = performance.now();
    // An observer that ends another call meanwhile adds to these arrays; the loop tells it too.
    for (let i = 0; i < this.#soonCount; i++) this.#tell(methods[i]!, codes[i]!, (now - starts[i]!) / 1000);
    this.#soonCount = 0;
  }

  #tell(method: ObservedMethod, code: ErrorCode | 'OK', seconds: number): void {
    const list = this.#list;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!.callEnded(method, code, seconds);
      } catch (error) {
        this.#report(error, 'callEnded');
      }
    }
  }

  // The report itself must not throw: ends told at the end of the tick have no caller to catch it.
  #report(error: unknown, hook: string): void {
    try {
      this.#failed(error, hook);
    } catch {
      // A logger that throws has nowhere left to report to.
    }
  }

  /** message tells every observer that listens for stream messages. */
  message(method: ObservedMethod, direction: 'received' | 'sent'): void {
    for (const observer of this.#list) {
      if (observer.streamMessage === undefined) continue;
      try {
        observer.streamMessage(method, direction);
      } catch (error) {
        this.#report(error, 'streamMessage');
      }
    }
  }
}

function flushEnds(observers: Observers): void {
  observers.flushEnds();
}
