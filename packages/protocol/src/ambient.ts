/**
 * The ambient call: while a server handler runs, the call it serves is kept in an AsyncLocalStorage, so that a
 * call the handler makes with a tunnelrpc client inherits what is left of the inbound deadline and is cancelled
 * with it, without passing anything by hand (grpc-js needs an explicit `parent`; connect and tRPC leave it to
 * the user). The server enters it; the client reads it.
 *
 * One store per process, kept on globalThis under a registered symbol, so that two copies of this package (a
 * server and a client installed at different versions) still meet.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** AmbientCall is what an inbound call lends to the calls made while it runs. */
export interface AmbientCall {
  /** Absolute deadline of the inbound call, in ms since the epoch. */
  readonly deadline: number;
  /** Aborted when the inbound call is cancelled, passes its deadline, or its tunnel closes. */
  readonly signal: AbortSignal;
  /** Wire name of the inbound call, for error messages. */
  readonly method: string;
}

const KEY = Symbol.for('tunnelrpc.ambientCall');
const READERS = Symbol.for('tunnelrpc.ambientCallReaders');
const holder = globalThis as { [KEY]?: AsyncLocalStorage<AmbientCall>; [READERS]?: boolean };

/** ambientCalls is the process-wide store of the inbound call being served. @internal */
export const ambientCalls: AsyncLocalStorage<AmbientCall> = (holder[KEY] ??= new AsyncLocalStorage<AmbientCall>());

/**
 * enableAmbientCalls says that something in this process reads the ambient call (a tunnelrpc client: every
 * RpcClient calls it). Until then servers do not enter the store at all: on Node 20 it tracks every promise a
 * handler makes, a cost worth paying only when a handler can make a call that inherits its deadline.
 * @internal
 */
export function enableAmbientCalls(): void {
  holder[READERS] = true;
}

/** ambientCallsWanted tells whether enableAmbientCalls was called in this process. @internal */
export function ambientCallsWanted(): boolean {
  return holder[READERS] === true;
}

/** currentAmbientCall returns the inbound call whose handler is running here, or undefined outside any handler. */
export function currentAmbientCall(): AmbientCall | undefined {
  return ambientCalls.getStore();
}
