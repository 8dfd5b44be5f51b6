/**
 * @tunnelrpc/client: call zod-typed services over one multiplexed CONNECT tunnel.
 *
 * connect() dials (http://, https://, unix:), sends `CONNECT /_rpc`, and returns an RpcClient that carries many
 * concurrent calls over one socket, answered in any order. createClient() gives it the types of a contract.
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
import { RpcClient } from './client.js';
import { dial } from './dial.js';
import { resolveClientOptions, type ClientOptions } from './options.js';
import { parseTarget } from './target.js';

/**
 * connect dials a tunnelrpc server and resolves with a client once the tunnel is open. Rejects with an RpcError:
 * INVALID_ARGUMENT for a bad URL or option, UNAVAILABLE when the server cannot be reached, or the code of the
 * HTTP refusal (401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 503 UNAVAILABLE) with
 * `data: { status, body }`.
 */
export async function connect(url: string, options: ClientOptions = {}): Promise<RpcClient> {
  const resolved = resolveClientOptions(options);
  const target = parseTarget(url);
  return new RpcClient(await dial(target, resolved), resolved, target);
}

export { RpcClient } from './client.js';
export type { CallFailure, CallOptions, NotifyOptions } from './client.js';
export type { ClientOptions } from './options.js';
export type { HandshakeKind } from './handshake-reply.js';
export { createClient } from './typed-client.js';
export type { MethodCaller, TypedClient } from './typed-client.js';
export { RpcError } from '@tunnelrpc/protocol';
export type { ErrorCode } from '@tunnelrpc/protocol';

// ---- Building blocks: which forward proxy a dial uses (the same decision connect() makes). ----
export { chooseProxy } from './proxy-env.js';
export type { ProxyChoice, ProxyTarget } from './proxy-env.js';
