/** Serving an RpcServer for a test: attached to an http or https server on a free loopback port, closed after. */
import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** Attachable is the part of an RpcServer this needs, so that the kit does not depend on the server package. */
export interface Attachable {
  attach(server: HttpServer | HttpsServer): unknown;
  close(): Promise<void>;
}

/**
 * listenAttached attaches `rpc` to `http`, listens on 127.0.0.1:0, and hands `defer` the teardown (close the
 * RpcServer, then every connection, then the listener); resolves with the port.
 */
export async function listenAttached(rpc: Attachable, http: HttpServer | HttpsServer, defer: (step: () => Promise<void>) => void): Promise<number> {
  rpc.attach(http);
  defer(async () => {
    await rpc.close();
    http.closeAllConnections();
    if (http.listening) await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  return (http.address() as AddressInfo).port;
}
