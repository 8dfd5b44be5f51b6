/**
 * @tunnelrpc/client: call zod-typed services over one multiplexed CONNECT tunnel.
 *
 * connect() dials (http://, https://, unix:), sends `CONNECT /_rpc`, and returns an RpcClient that carries many
 * concurrent calls over one socket, answered in any order; createRpcClient() returns one at once and dials in the
 * background, for a server that may not be up yet. createClient() gives it the types of a contract.
 * Every call ends: answered, or failed with an RpcError whose code says why (a default deadline applies).
 *
 * @example
 * import { connect, createClient } from '@tunnelrpc/client';
 * import { Echo } from './echo-contract.js';
 *
 * const client = await connect('http://127.0.0.1:8080/_rpc');
 * const echo = createClient(Echo, client);
 * console.log(await echo.add({ a: 1, b: 2 }, { timeout: 1000 })); // 3
 * await client.close();
 */
// The public types use Buffer, AbortSignal and node: modules: this brings @types/node into a consumer's program
// whatever its `types` setting (TypeScript 7 defaults to none), so a strict project needs no setting for it.
/// <reference types="node" preserve="true" />
import { RpcClient, firstTunnel } from './client.js';
import { resolveClientOptions, type ClientOptions } from './options.js';
import { parseTargets } from './target.js';

/**
 * connect dials a tunnelrpc server and resolves with a client once the tunnel is open. Given several URLs, or a
 * host name with several addresses, it keeps tunnels to each (a pool: calls go to the less busy of two tunnels
 * drawn at random, weighed by each endpoint's recent latency; endpoints whose dials fail are ejected and redialled
 * with backoff, and those whose answers blame them are ejected for a while) and resolves once the first is open.
 * Rejects with an RpcError: INVALID_ARGUMENT for a bad URL, list or option, UNAVAILABLE when no server can be
 * reached, or the code of the HTTP refusal (401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED,
 * 503 UNAVAILABLE) with `data: { status, body }`; with several endpoints failing, one error naming each.
 */
export async function connect(url: string | readonly string[], options: ClientOptions = {}): Promise<RpcClient> {
  const resolved = resolveClientOptions(options);
  const client = new RpcClient(resolved, parseTargets(url));
  await firstTunnel(client);
  return client;
}

/**
 * createRpcClient returns a client at once, without waiting for the server (which may not be up yet): it dials in
 * the background, and calls made meanwhile wait for the first tunnel, each bounded by its deadline (gRPC's
 * wait-for-ready; set `waitForReady: false` to fail them at once with UNAVAILABLE instead). Dial failures are
 * retried with backoff; a refusal another try will not fix (401, 403, 404) fails the waiting calls with its code.
 * Takes one URL or a list, as connect(). Throws INVALID_ARGUMENT for a bad URL, list or option.
 */
export function createRpcClient(url: string | readonly string[], options: ClientOptions = {}): RpcClient {
  const resolved = resolveClientOptions(options);
  return new RpcClient(resolved, parseTargets(url));
}

export { RpcClient } from './client.js';
export type { CallFailure, CallOptions, NotifyOptions, StreamOptions } from './call-options.js';
export type { BidiStreamCall, ServerStreamCall } from './stream.js';
export type { ClientOptions, ConnectHeaders, LookupFunction, ResolvedAddress } from './options.js';
export type { OutlierDetectionOptions } from './outlier.js';
export type { EndpointSnapshot, EndpointState } from './endpoint.js';
export type { HandshakeKind } from './handshake-reply.js';
export type { ClientConnectedEvent, ClientDisconnectedEvent, ClientEvent, ClientListener, ClientReconnectingEvent } from './events.js';
export { createClient } from './typed-client.js';
export type { MethodCaller, StreamCaller, StreamSource, TypedClient } from './typed-client.js';
export { RpcError } from '@tunnelrpc/protocol';
export type { ContractSkew, ErrorCode, MethodErrorOf, RpcErrorOptions, TcpInfo } from '@tunnelrpc/protocol';

// ---- Building blocks: which forward proxy a dial uses (the same decision connect() makes). ----
export { chooseProxy } from './proxy-env.js';
export type { ProxyChoice, ProxyTarget } from './proxy-env.js';

// ---- Interceptors: the call shapes they wrap. ----
export type { CallFn, CallKind, CallSide, Interceptor, RpcCall, StreamCall, StreamWatcher, UnaryCall } from '@tunnelrpc/protocol';
// ---- Observers: the call counts metrics read, without joining the call's path. ----
export type { CallObserver, CallType, ObservedMethod } from '@tunnelrpc/protocol';
