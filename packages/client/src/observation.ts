/**
 * The client's side of the call observers (ClientOptions.observers): one ObservedMethod per method name and call
 * type, made on first use and reused, so that an observer can key its counters by the object; a call's start is
 * recorded on its record, and call.ts tells the observers its end when it settles.
 */
import type { CallObserver, CallType, ObservedMethod } from '@tunnelrpc/protocol';
import { Observers, callTypeOf, observedMethod } from '@tunnelrpc/protocol/internal';
import type { Call } from './call.js';
import type { StreamCore } from './stream.js';

// Past this many names, further ones are observed as one: a caller's computed or mistyped names cannot grow an
// observer's series without bound.
const MAX_OBSERVED_NAMES = 10_000;

/** ClientObservation runs a client's observers. @internal */
export class ClientObservation {
  readonly #observers: Observers;
  // Per type, by name: the name the caller passed is looked up as it is (no key string made per call).
  readonly #known = new Map<CallType, Map<string, ObservedMethod>>();
  readonly #others = new Map<CallType, ObservedMethod>();
  #names = 0;
  #last: ObservedMethod | undefined;

  constructor(observers: readonly CallObserver[]) {
    // The client has no logger: an observer's throw is its own bug and costs nothing else.
    this.#observers = new Observers(observers, () => {});
  }

  /** begin tells the observers that `call` started and records it on the call (and its stream's messages). */
  begin(call: Call, stream: StreamCore | undefined): void {
    const type = callTypeOf(stream?.kind ?? 'unary', call.notification);
    const method = this.#method(call.method, type);
    const observers = this.#observers;
    observers.started(method);
    call.observers = observers;
    call.observedMethod = method;
    call.observedAt = performance.now();
    if (stream !== undefined) stream.observe = (direction) => observers.message(method, direction);
  }

  #method(name: string, type: CallType): ObservedMethod {
    // Calls come in runs of one method: the last one found is checked before the two Maps.
    const last = this.#last;
    if (last !== undefined && last.method === name && last.type === type) return last;
    const found = this.#find(name, type);
    if (found.registered) this.#last = found;
    return found;
  }

  #find(name: string, type: CallType): ObservedMethod {
    let ofType = this.#known.get(type);
    if (ofType === undefined) this.#known.set(type, (ofType = new Map()));
    const known = ofType.get(name);
    if (known !== undefined) return known;
    if (this.#names >= MAX_OBSERVED_NAMES) {
      let other = this.#others.get(type);
      if (other === undefined) this.#others.set(type, (other = observedMethod('unknown.unknown', type, false)));
      return other;
    }
    const made = observedMethod(name, type, true);
    ofType.set(name, made);
    this.#names++;
    return made;
  }
}
