/**
 * @tunnelrpc/prometheus: Prometheus metrics for tunnelrpc servers and clients, named after go-grpc-middleware's
 * Prometheus provider (`tunnelrpc_server_started_total{service,method,type}`, `..._handled_total{...,code}`,
 * `..._handling_seconds` with the OpenTelemetry RPC buckets, tunnel gauges and counters, and the
 * `tunnelrpc_client_*` mirror). They are plain call observers and listeners over prom-client, which is a peer
 * dependency: install it next to this package. Metrics go to a private Registry unless you pass one.
 *
 * @example
 * import { createServer } from 'node:http';
 * import { RpcServer } from '@tunnelrpc/server';
 * import { createPrometheus } from '@tunnelrpc/prometheus';
 * import { Echo } from './echo-contract.js';
 *
 * const metrics = createPrometheus({ services: [Echo] });
 * const rpc = new RpcServer({ observers: [metrics.serverObserver], listeners: [metrics.serverListener] });
 * rpc.register(Echo, { add: ({ a, b }) => a + b });
 * const http = createServer();
 * rpc.attach(http);
 * metrics.serve(http); // GET /metrics on the same port
 * http.listen(8080);
 */
// The public types use Buffer, AbortSignal and node: modules: this brings @types/node into a consumer's program
// whatever its `types` setting (TypeScript 7 defaults to none), so a strict project needs no setting for it.
/// <reference types="node" preserve="true" />
export { OTHER_METHOD, RPC_DURATION_BUCKETS, createPrometheus } from './prometheus.js';
export type { PrometheusOptions, ServeOptions, TunnelMetrics } from './prometheus.js';
