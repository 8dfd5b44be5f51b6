/**
 * createClient over a real tunnel to a hand-written server: wire names, params, output parsing, notifications.
 * The compile-time half (wrong params are type errors) lives in typed-client.types.ts.
 */
import { expect } from 'chai';
import { createClient } from '@tunnelrpc/client';
import { Shop } from './contract.js';
import { expectRejects } from '@tunnelrpc/test-kit';
import { cleanup, openTunnel } from './helpers.js';

describe('createClient', () => {
  afterEach(cleanup);

  it('sends "Shop.price" with the input as params and resolves with the output parsed by the schema', async () => {
    const { peer, client } = await openTunnel();
    const shop = createClient(Shop, client);
    const result = shop.price({ sku: 'apple', qty: 3 });
    const request = await peer.nextRequest();
    expect(request.method).to.equal('Shop.price');
    expect(request.params).to.deep.equal({ sku: 'apple', qty: 3 });
    // z.object strips unknown keys: seeing them gone proves the result went through the output schema.
    await peer.respond(request.id, { cents: 250, extra: 'dropped by the schema' });
    expect(await result).to.deep.equal({ cents: 250 });
  });

  it('applies a transform of the output schema', async () => {
    const { peer, client } = await openTunnel();
    const result = createClient(Shop, client).length('abcd');
    const request = await peer.nextRequest();
    expect(request).to.include({ method: 'Shop.length', params: 'abcd' });
    await peer.respond(request.id, 'four');
    expect(await result).to.equal(4);
  });

  it('rejects INTERNAL naming the method and the field when the result breaks the output schema', async () => {
    const { peer, client } = await openTunnel();
    const result = createClient(Shop, client).price({ sku: 'apple', qty: 1 });
    await peer.respond((await peer.nextRequest()).id, { cents: 'free' });
    const error = await expectRejects(result, 'INTERNAL', 'the result of Shop.price does not match the contract (cents: ');
    const data = error.data as { issues: { path: unknown[]; code: string }[]; total: number };
    expect(data.total).to.equal(1);
    expect(data.issues[0]).to.include({ code: 'invalid_type' });
    expect(data.issues[0]!.path).to.deep.equal(['cents']);
    // The connection is fine: the next call works.
    const next = createClient(Shop, client).ping();
    await peer.respond((await peer.nextRequest()).id, 'pong');
    expect(await next).to.equal('pong');
  });

  it('passes an error response through with its code, message and data', async () => {
    const { peer, client } = await openTunnel();
    const result = createClient(Shop, client).price({ sku: 'pear', qty: 1 });
    await peer.fail((await peer.nextRequest()).id, 'NOT_FOUND', 'no such sku', { sku: 'pear' });
    const error = await expectRejects(result, 'NOT_FOUND', 'no such sku');
    expect(error.data).to.deep.equal({ sku: 'pear' });
  });

  it('calls a method with z.void() input with no argument, sending params nil', async () => {
    const { peer, client } = await openTunnel();
    const result = createClient(Shop, client).ping();
    const request = await peer.nextRequest();
    expect(request.method).to.equal('Shop.ping');
    expect(request.params).to.equal(null);
    await peer.respond(request.id, 'pong');
    expect(await result).to.equal('pong');
  });

  it('resolves undefined for a z.void() output answered with nil', async () => {
    const { peer, client } = await openTunnel();
    const result = createClient(Shop, client).clear();
    const request = await peer.nextRequest();
    expect(request).to.include({ method: 'Shop.clear', params: null });
    await peer.respond(request.id, null);
    expect(await result).to.equal(undefined);
  });

  it('sends a notification method as [2, "Shop.log", params, meta?] and resolves with undefined once written', async () => {
    const { peer, client } = await openTunnel();
    const shop = createClient(Shop, client);
    expect(await shop.log({ line: 'hello' })).to.equal(undefined);
    expect(await shop.log({ line: 'traced' }, { headers: { 'x-trace-id': 't1' } })).to.equal(undefined);
    expect(await shop.tick()).to.equal(undefined);
    expect(await peer.nextMessage()).to.deep.equal({ type: 2, method: 'Shop.log', params: { line: 'hello' } });
    expect(await peer.nextMessage()).to.deep.equal({ type: 2, method: 'Shop.log', params: { line: 'traced' }, meta: { headers: { 'x-trace-id': 't1' } } });
    expect(await peer.nextMessage()).to.deep.equal({ type: 2, method: 'Shop.tick', params: null });
    expect(client.pendingCalls).to.equal(0);
  });

  it('passes call options through: timeout and headers in meta, signal to the call', async () => {
    const { peer, client } = await openTunnel();
    const controller = new AbortController();
    const result = createClient(Shop, client).ping(undefined, { timeout: 1500, headers: { 'x-user': 'u1' }, signal: controller.signal });
    const request = await peer.nextRequest();
    expect(request.meta).to.deep.equal({ timeout: 1500, headers: { 'x-user': 'u1' } });
    controller.abort();
    await expectRejects(result, 'CANCELLED');
    expect(await peer.nextMessage()).to.deep.equal({ type: 3, id: request.id });
  });

  it('has exactly one frozen function per contract method', async () => {
    const { client } = await openTunnel();
    const shop = createClient(Shop, client);
    expect(Object.keys(shop)).to.deep.equal(['price', 'ping', 'clear', 'length', 'log', 'tick']);
    expect(Object.isFrozen(shop)).to.equal(true);
    for (const method of Object.values(shop)) expect(method).to.be.a('function');
  });
});
