/**
 * undici client: one undici Client (one keep-alive connection) with `pipelining: C`, `client.request` and the
 * body read with arrayBuffer(). undici pipelines only requests it may replay, so each POST is marked
 * `idempotent: true` (an echo is) and `blocking: false`; without them it sends one request at a time.
 */
import { Client } from 'undici';
import { failClient, runClosedLoop } from '../closed-loop.js';

runClosedLoop(async ({ host, port, concurrency }) => {
  const client = new Client(`http://${host}:${port}`, { pipelining: concurrency });
  const headers = { 'content-type': 'application/octet-stream' };
  return {
    call(payload, done) {
      client
        .request({ path: '/echo', method: 'POST', headers, body: payload, idempotent: true, blocking: false })
        .then(async ({ statusCode, body }) => {
          const bytes = new Uint8Array(await body.arrayBuffer());
          done(statusCode === 200 ? undefined : new Error(`HTTP ${statusCode}`), bytes);
        })
        .catch((error: unknown) => done(error));
    },
    close: () => client.close(),
  };
}).catch(failClient);
