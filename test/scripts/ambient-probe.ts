/**
 * A process with a server and no tunnelrpc client: does a handler run inside the ambient-call store? It answers
 * over a raw tunnel (no RpcClient may exist here), then creates a client and asks again. Prints one JSON line:
 * {"before": <what the handler saw>, "after": <the same, after a client exists>}. Used by
 * test/e2e/ambient-store.test.ts; run with `node test/dist/scripts/ambient-probe.js`.
 */
import { z } from 'zod';
import { createRpcClient } from '@tunnelrpc/client';
import { currentAmbientCall, defineService } from '@tunnelrpc/protocol';
import { MessageType, encodeMessage } from '@tunnelrpc/protocol/internal';
import { RpcServer } from '@tunnelrpc/server';
import { RawTunnel } from '@tunnelrpc/test-kit';

const Probe = defineService('Probe', { seen: { input: z.void(), output: z.string() } });

async function ask(port: number, id: number): Promise<unknown> {
  const tunnel = await RawTunnel.open(port);
  tunnel.write(encodeMessage({ type: MessageType.Request, id, method: 'Probe.seen', params: null, meta: undefined }));
  const answer = await tunnel.next();
  tunnel.destroy();
  return answer.type === MessageType.Response ? answer.result : answer;
}

async function main(): Promise<void> {
  const rpc = new RpcServer().register(Probe, { seen: async () => currentAmbientCall()?.method ?? 'none' });
  const { port } = await rpc.listen(0);
  const before = await ask(port, 1);
  const client = createRpcClient(`http://127.0.0.1:${port}/_rpc`);
  const after = await ask(port, 2);
  await client.close();
  await rpc.close();
  console.log(JSON.stringify({ before, after }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
