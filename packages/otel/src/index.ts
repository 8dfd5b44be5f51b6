/**
 * @tunnelrpc/otel: OpenTelemetry traces for tunnelrpc. createTracing() returns one interceptor for servers and
 * clients: a span per call (kind SERVER or CLIENT, named `Service.method`, with `rpc.system.name`, `rpc.method`,
 * `rpc.response.status_code` and `error.type`), and the W3C trace context carried in meta.headers, so a trace
 * crosses services. It depends on `@opentelemetry/api` only (an optional peer): without an SDK, spans are no-ops.
 *
 * @example
 * import { RpcServer } from '@tunnelrpc/server';
 * import { connect } from '@tunnelrpc/client';
 * import { createTracing } from '@tunnelrpc/otel';
 *
 * const { interceptor } = createTracing(); // the global provider and propagator, set up by your SDK
 * const rpc = new RpcServer({ interceptors: [interceptor] });
 * const client = await connect('http://10.0.0.5:8080/_rpc', { interceptors: [interceptor] });
 */
// The public types use Buffer, AbortSignal and node: modules: this brings @types/node into a consumer's program
// whatever its `types` setting (TypeScript 7 defaults to none), so a strict project needs no setting for it.
/// <reference types="node" preserve="true" />
export { SERVER_ERROR_CODES, createTracing } from './tracing.js';
export type { Tracing, TracingOptions } from './tracing.js';
