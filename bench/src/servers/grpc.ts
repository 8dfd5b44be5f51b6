/**
 * @grpc/grpc-js server: the echo method of grpc-echo.ts over insecure HTTP/2, default server options.
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { echoService } from '../grpc-echo.js';
import { failServer, serveControl } from '../server-control.js';

async function main(): Promise<void> {
  const server = new Server();
  server.addService(echoService, {
    Echo: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => callback(null, call.request),
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
