/**
 * @grpc/grpc-js client: one Client (one channel, one HTTP/2 connection) and makeUnaryRequest on the generic echo
 * method, default channel options.
 */
import { Client, credentials } from '@grpc/grpc-js';
import { failClient, runClosedLoop } from '../closed-loop.js';
import { ECHO_PATH, identityDeserialize, identitySerialize } from '../grpc-echo.js';

const READY_TIMEOUT_MS = 10_000;

runClosedLoop(async ({ host, port }) => {
  const client = new Client(`${host}:${port}`, credentials.createInsecure());
  await new Promise<void>((resolve, reject) => {
    client.waitForReady(Date.now() + READY_TIMEOUT_MS, (error) => (error === undefined || error === null ? resolve() : reject(error)));
  });
  return {
    call(payload, done) {
      client.makeUnaryRequest<Buffer, Buffer>(ECHO_PATH, identitySerialize, identityDeserialize, payload, (error, echoed) => done(error ?? undefined, echoed));
    },
    close: async () => client.close(),
  };
}).catch(failClient);
