/**
 * Compile-time checks of createClient's types. Nothing here runs: `tsc -b` fails if a `@ts-expect-error` line
 * compiles (the types are too loose) or if a line without one does not (the types are too tight).
 */
import { createClient, type RpcClient } from '@tunnelrpc/client';
import { Shop } from './contract.js';

/** typeChecks is never called; it exists to be type-checked. */
export async function typeChecks(client: RpcClient): Promise<void> {
  const shop = createClient(Shop, client);

  // What must compile, with the types it must have.
  const price: { cents: number } = await shop.price({ sku: 'a', qty: 1 });
  const pong: 'pong' = await shop.ping();
  const pongWithOptions: 'pong' = await shop.ping(undefined, { timeout: 100, headers: { a: 'b' }, signal: AbortSignal.timeout(1) });
  const length: number = await shop.length('abc');
  const cleared: void = await shop.clear();
  const logged: void = await shop.log({ line: 'x' }, { headers: { a: 'b' }, timeout: 5 });
  const ticked: void = await shop.tick();
  void [price, pong, pongWithOptions, length, cleared, logged, ticked];

  // @ts-expect-error qty must be a number
  await shop.price({ sku: 'a', qty: '1' });
  // @ts-expect-error sku is required
  await shop.price({ qty: 1 });
  // @ts-expect-error the input is required
  await shop.price();
  // @ts-expect-error the input has no such key
  await shop.price({ sku: 'a', qty: 1, extra: true });
  // @ts-expect-error the contract has no such method
  await shop.refund({ sku: 'a' });
  // @ts-expect-error the result is { cents: number }, not a string
  const wrong: string = await shop.price({ sku: 'a', qty: 1 });
  // @ts-expect-error the output transform makes the result a number
  const notString: string = await shop.length('abc');
  // @ts-expect-error ping takes no input
  await shop.ping('x');
  // @ts-expect-error the timeout is a number of ms
  await shop.ping(undefined, { timeout: '5' });
  // @ts-expect-error a notification resolves with nothing
  const notValue: string = await shop.log({ line: 'x' });
  // @ts-expect-error a notification cannot be idempotent: it is never re-sent
  await shop.log({ line: 'x' }, { idempotent: true });
  // @ts-expect-error the typed client is read-only
  shop.price = shop.price;
  void [wrong, notString, notValue];
}
