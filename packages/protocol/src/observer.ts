/**
 * Call observers: the metrics stage of the call pipeline. An interceptor joins a call's path (a closure and a
 * promise per call, a handler made asynchronous on the server); an observer only hears that a call started and
 * how it ended, synchronously, with the same method object every time, so that counting a call costs a few
 * additions. The server tells them about every call it admits, the client about every call its caller makes,
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
  /** The call ended with the code its caller gets ('OK' for a result), `seconds` after it started. */
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

  constructor(list: readonly CallObserver[], failed: (error: unknown, hook: string) => void) {
    this.#list = list;
    this.#failed = failed;
  }

  /**
   * started tells every observer. The caller keeps the start time (performance.now() based) for ended(): the
   * server reads the clock once per chunk, for every call that arrived in it.
   */
  started(method: ObservedMethod): void {
    for (const observer of this.#list) {
      try {
        observer.callStarted(method);
      } catch (error) {
        this.#failed(error, 'callStarted');
      }
    }
  }

  /** ended tells every observer how the call that started at `startedAt` ended. */
  ended(method: ObservedMethod, code: ErrorCode | 'OK', startedAt: number): void {
    const seconds = (performance.now() - startedAt) / 1000;
    for (const observer of this.#list) {
      try {
        observer.callEnded(method, code, seconds);
      } catch (error) {
        this.#failed(error, 'callEnded');
      }
    }
  }

  /** message tells every observer that listens for stream messages. */
  message(method: ObservedMethod, direction: 'received' | 'sent'): void {
    for (const observer of this.#list) {
      if (observer.streamMessage === undefined) continue;
      try {
        observer.streamMessage(method, direction);
      } catch (error) {
        this.#failed(error, 'streamMessage');
      }
    }
  }
}
