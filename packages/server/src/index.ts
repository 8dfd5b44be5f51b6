/**
 * @tunnelrpc/server: serve zod-typed services over CONNECT tunnels on a Node http or https server.
 *
 * A client sends `CONNECT /_rpc`; the server answers `HTTP/1.0 200 Connected` and the socket carries
 * length-prefixed MessagePack frames from then on (PROTOCOL.md). Other paths keep going to your own request
 * handler, so one port serves both. Every limit is an option with a safe default (ServerOptions).
 *
 * @example
 * import { createServer } from 'node:http';
 * import { RpcServer } from '@tunnelrpc/server';
 * import { Echo } from './echo-contract.js';
 *
 * const rpc = new RpcServer().register(Echo, { add: ({ a, b }) => a + b });
 * const http = createServer((req, res) => res.end('hello'));
 * rpc.attach(http);
 * http.listen(8080);
 * // or: await rpc.listen(8080); ... await rpc.close();
 */
// The public types use Buffer, AbortSignal and node: modules: this brings @types/node into a consumer's program
// whatever its `types` setting (TypeScript 7 defaults to none), so a strict project needs no setting for it.
/// <reference types="node" preserve="true" />
export { RpcServer } from './server.js';
export type { ListenAddress } from './server.js';
export type { UnixListenTarget } from './unix-listen.js';
export type { PeerCredentials } from './peer-credentials.js';
export type { ServerOptions } from './options.js';
export { createRateLimitedLogger } from './log.js';
export type { LogEntry, LogLevel, ServerLogger } from './log.js';
export type { BidiStreamHandler, CallContext, ClientStreamHandler, Handler, HandlerOf, PeerAddress, PeerCertificate, ServerStreamHandler, ServiceImpl } from './handler-types.js';
export type { DebugSnapshot } from './debug-page.js';
export type {
  ServerEvent,
  ServerListener,
  TunnelActiveEvent,
  TunnelClosedEvent,
  TunnelGoawayEvent,
  TunnelIdleEvent,
  TunnelOpenedEvent,
  TunnelRefusedEvent,
} from './events.js';
export { RpcError } from '@tunnelrpc/protocol';
export type { RpcErrorOptions } from '@tunnelrpc/protocol';
export type { ErrorCode, TcpInfo } from '@tunnelrpc/protocol';
export type { AmbientCall, CallFn, CallKind, CallSide, Interceptor, RpcCall, StreamCall, StreamWatcher, UnaryCall } from '@tunnelrpc/protocol';
export type { CallObserver, CallType, ObservedMethod } from '@tunnelrpc/protocol';
export { applyInterceptors, currentAmbientCall } from '@tunnelrpc/protocol';
