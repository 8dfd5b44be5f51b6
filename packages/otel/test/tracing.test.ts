/**
 * createTracing over real tunnels: a trace that crosses two services (client -> Front -> Back), recorded in an
 * in-memory exporter, with the parent-child links, kinds, names and RPC attributes; and the no-op path without
 * an SDK.
 */
import { createServer } from 'node:http';
import { expect } from 'chai';
import { SpanKind, SpanStatusCode, context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { connect, createClient, type RpcClient } from '@tunnelrpc/client';
import { RpcError, defineService } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';
import { createTracing } from '@tunnelrpc/otel';
import { listenAttached } from '@tunnelrpc/test-kit';

const Back = defineService('Back', {
  lookup: { input: z.object({ id: z.number() }), output: z.object({ id: z.number(), traceparent: z.string().nullable() }) },
});
const Front = defineService('Front', {
  get: { input: z.object({ id: z.number() }), output: z.object({ id: z.number(), traceparent: z.string().nullable() }) },
  missing: { input: z.void(), output: z.void() },
});

async function serve(rpc: RpcServer, closers: Array<() => Promise<void>>): Promise<string> {
  return `http://127.0.0.1:${await listenAttached(rpc, createServer(), (step) => closers.push(step))}/_rpc`;
}

describe('createTracing', () => {
  const closers: Array<() => Promise<void>> = [];
  let exporter: InMemorySpanExporter;
  let provider: BasicTracerProvider;

  before(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  after(() => {
    context.disable();
  });
  beforeEach(() => {
    exporter = new InMemorySpanExporter();
    provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await provider.shutdown();
  });

  async function twoServices(): Promise<{ client: RpcClient }> {
    const { interceptor } = createTracing({ tracerProvider: provider, propagator: new W3CTraceContextPropagator() });
    const backUrl = await serve(
      new RpcServer({ interceptors: [interceptor] }).register(Back, { lookup: ({ id }, ctx) => ({ id, traceparent: ctx.headers['traceparent'] ?? null }) }),
      closers,
    );
    const backClient = await connect(backUrl, { interceptors: [interceptor] });
    closers.push(() => backClient.close());
    const back = createClient(Back, backClient);
    const frontUrl = await serve(
      new RpcServer({ interceptors: [interceptor], logger: () => {} }).register(Front, {
        get: ({ id }) => back.lookup({ id }),
        missing: () => {
          throw new RpcError('NOT_FOUND', 'no such thing');
        },
      }),
      closers,
    );
    const client = await connect(frontUrl, { interceptors: [interceptor] });
    closers.push(() => client.close());
    return { client };
  }

  it('records one trace across two services with each span the child of the one before', async () => {
    const { client } = await twoServices();
    const result = await createClient(Front, client).get({ id: 7 });
    expect(result.id).to.equal(7);
    const spans = exporter.getFinishedSpans();
    const byKind = (name: string, kind: SpanKind): ReadableSpan => {
      const found = spans.find((span) => span.name === name && span.kind === kind);
      expect(found, `${name} ${SpanKind[kind]}`).to.not.equal(undefined);
      return found!;
    };
    const clientFront = byKind('Front.get', SpanKind.CLIENT);
    const serverFront = byKind('Front.get', SpanKind.SERVER);
    const clientBack = byKind('Back.lookup', SpanKind.CLIENT);
    const serverBack = byKind('Back.lookup', SpanKind.SERVER);
    expect(spans).to.have.length(4);
    const traceId = clientFront.spanContext().traceId;
    for (const span of spans) expect(span.spanContext().traceId).to.equal(traceId);
    expect(clientFront.parentSpanContext).to.equal(undefined);
    expect(serverFront.parentSpanContext?.spanId).to.equal(clientFront.spanContext().spanId);
    expect(clientBack.parentSpanContext?.spanId).to.equal(serverFront.spanContext().spanId);
    expect(serverBack.parentSpanContext?.spanId).to.equal(clientBack.spanContext().spanId);
    // The W3C traceparent the Back handler saw names the client span that called it.
    expect(result.traceparent).to.equal(`00-${traceId}-${clientBack.spanContext().spanId}-01`);
    expect(serverBack.attributes).to.deep.include({ 'rpc.system.name': 'tunnelrpc', 'rpc.method': 'Back.lookup', 'rpc.response.status_code': 'OK', 'network.peer.address': '127.0.0.1' });
    expect(clientFront.attributes).to.deep.include({ 'rpc.system.name': 'tunnelrpc', 'rpc.method': 'Front.get', 'rpc.response.status_code': 'OK', 'server.address': '127.0.0.1' });
    expect(clientFront.attributes['error.type']).to.equal(undefined);
  });

  it('sets rpc.response.status_code and error.type on failure; the status is ERROR on the client, unset on the server for a caller error', async () => {
    const { client } = await twoServices();
    await createClient(Front, client).missing().then(
      () => expect.fail('expected NOT_FOUND'),
      (error: unknown) => expect((error as RpcError).code).to.equal('NOT_FOUND'),
    );
    const spans = exporter.getFinishedSpans();
    const server = spans.find((span) => span.kind === SpanKind.SERVER)!;
    const caller = spans.find((span) => span.kind === SpanKind.CLIENT)!;
    for (const span of [server, caller]) {
      expect(span.name).to.equal('Front.missing');
      expect(span.attributes).to.deep.include({ 'rpc.response.status_code': 'NOT_FOUND', 'error.type': 'NOT_FOUND' });
    }
    expect(caller.status.code).to.equal(SpanStatusCode.ERROR);
    expect(server.status.code).to.equal(SpanStatusCode.UNSET);
  });

  it('names a call to an unregistered method _OTHER on the server, keeping the name in rpc.method_original', async () => {
    const { client } = await twoServices();
    await client.call('Front.nope', {}).catch(() => undefined);
    const server = exporter.getFinishedSpans().find((span) => span.kind === SpanKind.SERVER)!;
    expect(server.name).to.equal('_OTHER');
    expect(server.attributes).to.deep.include({ 'rpc.method': '_OTHER', 'rpc.method_original': 'Front.nope', 'error.type': 'UNIMPLEMENTED' });
    expect(server.status.code).to.equal(SpanStatusCode.ERROR);
  });

  it('works as a no-op without an SDK: calls succeed and no traceparent is sent', async () => {
    const { interceptor } = createTracing();
    const url = await serve(new RpcServer({ interceptors: [interceptor] }).register(Back, { lookup: ({ id }, ctx) => ({ id, traceparent: ctx.headers['traceparent'] ?? null }) }), closers);
    const client = await connect(url, { interceptors: [interceptor] });
    closers.push(() => client.close());
    expect(await createClient(Back, client).lookup({ id: 1 })).to.deep.equal({ id: 1, traceparent: null });
    expect(exporter.getFinishedSpans()).to.deep.equal([]);
  });
});
