/**
 * @grpc/grpc-js server: the echo method of grpc-echo.ts for --payload NAME over insecure HTTP/2, default server
 * options.
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { ChildArgs } from '../child-args.js';
import { createEchoService } from '../grpc-echo.js';
import { isPayloadName } from '../payload.js';
import { failServer, serveControl } from '../server-control.js';

async function main(): Promise<void> {
  const payload = new ChildArgs().string('payload', 'small');
  if (!isPayloadName(payload)) throw new Error(`--payload ${JSON.stringify(payload)} is not a payload`);
  const server = new Server();
  server.addService(createEchoService(payload), {
    Echo: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => callback(null, call.request),
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
  });
  serveControl(port, {
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      }),
  });
}

main().catch(failServer);
