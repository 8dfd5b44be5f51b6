/**
 * The one test kit of the workspace, private, never published: byte builders (hex, frame, rawRequest), RpcError
 * assertions, a scripted server that plays wire-v1 against the real client, and a raw tunnel that plays a
 * hand-written client against the real server. Every package's tests and the end-to-end suite import it as `@tunnelrpc/test-kit`.
 */
export { fixstr, frame, hex, packValue, rawRequest, repeat, toHex } from './bytes.js';
export { expectRejects, expectThrows } from './rpc-error.js';
export { httpGet } from './http-get.js';
export { listenAttached } from './listen.js';
export type { Attachable } from './listen.js';
export type { HttpPage } from './http-get.js';
export { mulberry32 } from './random.js';
export { ScriptedPeer, ScriptedServer } from './scripted-server.js';
export { CONNECT_HEAD, RawTunnel, expectErrorResponse, expectGoaway, expectNoPeerBytes, expectOnlyGoaway, expectResponse, expectResult, rawSocket, readTunnelHead, readUntil, request } from './raw-tunnel.js';
