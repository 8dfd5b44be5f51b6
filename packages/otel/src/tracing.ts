/**
 * createTracing: one interceptor for both sides, after connectrpc/otelconnect-go. A span per call, kind CLIENT or
 * SERVER, named `Service.method`, with the current RPC semantic conventions; the W3C trace context travels in
 * meta.headers through the API's propagator, so a trace crosses services. It depends on the OpenTelemetry API
 * only: without an SDK registered, every span is a no-op.
 */
import {
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  ROOT_CONTEXT,
  type Attributes,
  type Context,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { RpcError, type ErrorCode, type Interceptor, type RpcCall } from '@tunnelrpc/protocol';

/** TracingOptions configures createTracing. Every field is optional. */
export interface TracingOptions {
  /** Where spans go. Default: the global provider (`trace.getTracerProvider()`), a no-op until an SDK registers one. */
  tracerProvider?: TracerProvider;
  /**
   * Reads and writes the trace context in meta.headers. Default: the global propagator
   * (`propagation.inject/extract`), W3C `traceparent`/`tracestate` once an SDK registers it.
   */
  propagator?: TextMapPropagator;
  /** Value of `rpc.system.name`. Default "tunnelrpc". */
  system?: string;
}

/** Tracing holds the interceptor to put in ServerOptions.interceptors and ClientOptions.interceptors. */
export interface Tracing {
  /** One interceptor for both sides: it reads `call.side`. Put it first, to time what the others add. */
  readonly interceptor: Interceptor;
}

/**
 * SERVER_ERROR_CODES are the codes that mark a SERVER span as an error (the server's fault), as the RPC semantic
 * conventions ask for gRPC; every other code is the caller's and leaves the status unset. A CLIENT span is an error
 * for every code.
 */
export const SERVER_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['UNKNOWN', 'DEADLINE_EXCEEDED', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS']);

const OTHER = '_OTHER';
const TRACER_NAME = '@tunnelrpc/otel';

const headerGetter: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key.toLowerCase()],
};
const headerSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key.toLowerCase()] = value;
  },
};

/** createTracing builds the tracing interceptor; the tracer is made once. */
export function createTracing(options: TracingOptions = {}): Tracing {
  const provider = options.tracerProvider ?? trace.getTracerProvider();
  const tracer: Tracer = provider.getTracer(TRACER_NAME);
  const system = options.system ?? 'tunnelrpc';
  const propagator = options.propagator;
  const inject = (ctx: Context, headers: Record<string, string>): void => {
    if (propagator === undefined) propagation.inject(ctx, headers, headerSetter);
    else propagator.inject(ctx, headers, headerSetter);
  };
  const extract = (headers: Record<string, string>): Context =>
    propagator === undefined ? propagation.extract(ROOT_CONTEXT, headers, headerGetter) : propagator.extract(ROOT_CONTEXT, headers, headerGetter);

  const interceptor: Interceptor = (next) => async (call: RpcCall) => {
    const server = call.side === 'server';
    const name = call.registered ? call.method : OTHER;
    const attributes: Attributes = { 'rpc.system.name': system, 'rpc.method': name };
    if (!call.registered) attributes['rpc.method_original'] = call.method.slice(0, 200);
    addPeer(attributes, call);
    const parent = server ? extract(call.headers) : context.active();
    const span = tracer.startSpan(name, { kind: server ? SpanKind.SERVER : SpanKind.CLIENT, attributes }, parent);
    const active = trace.setSpan(parent, span);
    if (!server) inject(active, call.headers);
    try {
      const result = await context.with(active, () => next(call));
      span.setAttribute('rpc.response.status_code', 'OK');
      return result;
    } catch (error) {
      const code: ErrorCode = error instanceof RpcError ? error.code : server ? 'INTERNAL' : 'UNKNOWN';
      span.setAttribute('rpc.response.status_code', code);
      span.setAttribute('error.type', code);
      if (!server || SERVER_ERROR_CODES.has(code)) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof RpcError ? error.message : undefined });
      }
      throw error;
    } finally {
      span.end();
    }
  };
  return { interceptor };
}

// server.address/port on a client span (from the target URL); network.peer.* on a server span.
function addPeer(attributes: Attributes, call: RpcCall): void {
  if (call.side === 'server') {
    const colon = call.peer.lastIndexOf(':');
    if (colon > 0) {
      attributes['network.peer.address'] = call.peer.slice(0, colon);
      const port = Number(call.peer.slice(colon + 1));
      if (Number.isInteger(port)) attributes['network.peer.port'] = port;
    }
    return;
  }
  try {
    const url = new URL(call.peer);
    if (url.hostname !== '') attributes['server.address'] = url.hostname.replace(/^\[|\]$/g, '');
    if (url.port !== '') attributes['server.port'] = Number(url.port);
  } catch {
    // A unix: target has no host and port to report.
  }
}
