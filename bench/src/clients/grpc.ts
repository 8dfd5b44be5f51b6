/**
 * @grpc/grpc-js client: one Client (one channel, one HTTP/2 connection) per connection and makeUnaryRequest on
 * the generic echo method, default channel options except a local subchannel pool, so that several channels in
 * one process really are several connections.
 */
import { Client, credentials } from '@grpc/grpc-js';
import { failClient, runClosedLoop } from '../closed-loop.js';
import { ECHO_PATH, echoCodec } from '../grpc-echo.js';

const READY_TIMEOUT_MS = 10_000;

runClosedLoop(async ({ host, port, payload }) => {
  const client = new Client(`${host}:${port}`, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  await new Promise<void>((resolve, reject) => {
    client.waitForReady(Date.now() + READY_TIMEOUT_MS, (error) => (error === undefined || error === null ? resolve() : reject(error)));
  });
  const { serialize, deserialize } = echoCodec(payload);
  return {
    call(value, done) {
      client.makeUnaryRequest<unknown, unknown>(ECHO_PATH, serialize, deserialize, value, (error, echoed) => done(error ?? undefined, echoed));
    },
    close: async () => client.close(),
  };
}).catch(failClient);
