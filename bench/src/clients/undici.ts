/**
 * undici client: one undici Client (one keep-alive connection) per connection with `pipelining: C`,
 * `client.request`, bytes payloads as an application/octet-stream body read with arrayBuffer(), strings and
 * objects as JSON (JSON.stringify, body.json()), as HTTP services carry them. undici pipelines only requests it
 * may replay, so each POST is marked `idempotent: true` (an echo is) and `blocking: false`; without them it sends
 * one request at a time.
 */
import { Client } from 'undici';
import { failClient, runClosedLoop } from '../closed-loop.js';
import { PAYLOADS } from '../payload.js';

runClosedLoop(async ({ host, port, concurrency, payload }) => {
  const client = new Client(`http://${host}:${port}`, { pipelining: concurrency });
  const json = PAYLOADS[payload].shape !== 'bytes';
  const headers = { 'content-type': json ? 'application/json' : 'application/octet-stream' };
  return {
    call(value, done) {
      client
        .request({ path: '/echo', method: 'POST', headers, body: json ? JSON.stringify(value) : (value as Buffer), idempotent: true, blocking: false })
        .then(async ({ statusCode, body }) => {
          const echoed = json ? await body.json() : new Uint8Array(await body.arrayBuffer());
          done(statusCode === 200 ? undefined : new Error(`HTTP ${statusCode}`), echoed);
        })
        .catch((error: unknown) => done(error));
    },
    close: () => client.close(),
  };
}).catch(failClient);
