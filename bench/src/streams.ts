/**
 * Streaming cells: messages/s of one server stream, small messages and 64 KiB messages, for tunnelrpc,
 * @grpc/grpc-js server streaming and a bare msgpackr socket doing the same (the ceiling). Each server runs in a
 * child process of its own; this process is the client. Prints one JSON line per run and a summary JSON line. The
 * ceiling uses the bench's ceiling wire (ceiling-wire.ts), so it batches writes as tunnelrpc does.
 *
 *   node bench/dist/streams.js [--runs 3] [--small N] [--large N]
 *   node bench/dist/streams.js --serve tunnelrpc|grpc|ceiling      (internal: the child's entry)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { CeilingReader, CeilingWriter, encodeCeilingFrame } from './ceiling-wire.js';
import { z } from 'zod';
import { connect, createClient } from '@tunnelrpc/client';
import { defineService } from '@tunnelrpc/protocol';
import { RpcServer } from '@tunnelrpc/server';

const TARGETS = ['tunnelrpc', 'grpc', 'ceiling'] as const;
type Target = (typeof TARGETS)[number];

const Bench = defineService('Bench', {
  feed: {
    kind: 'serverStream',
    input: z.strictObject({ n: z.number().int().min(0), size: z.number().int().min(0).max(1024 * 1024) }),
    serverMessage: z.instanceof(Uint8Array),
    output: z.number().int(),
  },
});

const STREAM_PATH = '/bench.Stream/Feed';
const identity = (bytes: Buffer): Buffer => bytes;
const grpcService: grpc.ServiceDefinition = {
  Feed: {
    path: STREAM_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'feed',
  },
};

// ---- servers (children) ----

async function serve(target: Target): Promise<number> {
  if (target === 'tunnelrpc') {
    const rpc = new RpcServer({ defaultTimeout: 300_000 }).register(Bench, {
      feed: async function* ({ n, size }) {
        const payload = new Uint8Array(size);
        for (let i = 0; i < n; i++) yield payload;
        return n;
      },
    });
    const { port } = await rpc.listen(0);
    return port;
  }
  if (target === 'grpc') {
    const server = new grpc.Server();
    server.addService(grpcService, {
      feed: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        const request = JSON.parse(call.request.toString()) as { n: number; size: number };
        const payload = Buffer.alloc(request.size);
        let i = 0;
        const pump = (): void => {
          while (i < request.n) {
            i++;
            if (!call.write(payload)) {
              call.once('drain', pump);
              return;
            }
          }
          call.end();
        };
        pump();
      },
    });
    return await new Promise((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
    );
  }
  // The ceiling: a request frame [0, [n, size]], answered by n frames [i, payload] and a last [-1, n], with the
  // bench's own ceiling wire (ceiling-wire.ts: coalesced writev batches, no copy of large byte arrays), yielding to
  // the socket whenever it needs to drain.
  const server = createNetServer((socket: Socket) => {
    socket.setNoDelay(true);
    const reader = new CeilingReader();
    const writer = new CeilingWriter(socket);
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk, ([, value]) => {
        const [n, size] = value as [number, number];
        const payload = new Uint8Array(size);
        let i = 0;
        const pump = (): void => {
          for (let batch = 0; batch < 32 && i < n; batch++) writer.write(encodeCeilingFrame(i++, payload));
          if (i >= n) {
            writer.write(encodeCeilingFrame(0xffff_ffff, n));
            return;
          }
          if (socket.writableNeedDrain) socket.once('drain', pump);
          else setImmediate(pump);
        };
        pump();
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

// ---- clients (this process) ----

// Credit is reserved at maxStreamMessageSize per message (PROTOCOL.md 12.4): a stream of small messages gets a
// window of 2048 by announcing a 1 KiB bound (2 MiB reserved, as the README suggests for such streams; with 512 the
// server ran out of credit every 300 messages and waited for grants); the 64 KiB cell keeps the defaults (128 KiB
// bound, window 32).
const SMALL_STREAM = { maxStreamMessageSize: 1024, maxStreamCredit: 2048 };

async function runTunnelrpc(port: number, n: number, size: number): Promise<number> {
  const client = await connect(`http://127.0.0.1:${port}/_rpc`, { defaultTimeout: 300_000, ...(size <= 512 ? SMALL_STREAM : {}) });
  try {
    const bench = createClient(Bench, client);
    let count = 0;
    const feed = bench.feed({ n, size });
    for await (const _message of feed) count++;
    if ((await feed.result) !== n || count !== n) throw new Error(`tunnelrpc: got ${count} of ${n}`);
    return count;
  } finally {
    await client.close();
  }
}

async function runGrpc(port: number, n: number, size: number): Promise<number> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const call = client.makeServerStreamRequest(STREAM_PATH, identity, identity, Buffer.from(JSON.stringify({ n, size })));
    let count = 0;
    call.on('data', () => count++);
    await new Promise<void>((resolve, reject) => {
      call.on('end', resolve);
      call.on('error', reject);
    });
    if (count !== n) throw new Error(`grpc: got ${count} of ${n}`);
    return count;
  } finally {
    client.close();
  }
}

async function runCeiling(port: number, n: number, size: number): Promise<number> {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const reader = new CeilingReader();
  let count = 0;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk, ([id]) => {
        if (id === 0xffff_ffff) resolve();
        else count++;
      });
    });
  });
  new CeilingWriter(socket).write(encodeCeilingFrame(0, [n, size]));
  await done;
  socket.destroy();
  if (count !== n) throw new Error(`ceiling: got ${count} of ${n}`);
  return count;
}

const RUNNERS: Record<Target, (port: number, n: number, size: number) => Promise<number>> = {
  tunnelrpc: runTunnelrpc,
  grpc: runGrpc,
  ceiling: runCeiling,
};

interface Cell {
  target: Target;
  size: number;
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  clientRssMiB: number;
  serverRssMiB: number;
}

async function startChild(target: Target): Promise<{ child: ChildProcess; port: number; rss: () => Promise<number> }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', target], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  const rss = async (): Promise<number> => {
    child.send('rss');
    const [reply] = (await once(child, 'message')) as [{ rss: number }];
    return reply.rss;
  };
  return { child, port: message.port, rss };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { serve: { type: 'string' }, runs: { type: 'string' }, small: { type: 'string' }, large: { type: 'string' } },
  });
  if (values.serve !== undefined) {
    const port = await serve(values.serve as Target);
    process.on('message', (message) => {
      if (message === 'rss') process.send!({ rss: process.memoryUsage().rss });
      // A clean exit, so that a child run with --cpu-prof writes its profile.
      if (message === 'exit') process.exit(0);
    });
    process.send!({ port });
    return;
  }
  const runs = Number(values.runs ?? 3);
  const sizes: [number, number][] = [
    [16, Number(values.small ?? 200_000)],
    [64 * 1024, Number(values.large ?? 5_000)],
  ];
  const cells: Cell[] = [];
  for (const [size, n] of sizes) {
    for (const target of TARGETS) {
      const { child, port, rss } = await startChild(target);
      try {
        await RUNNERS[target](port, Math.min(n, 1000), size); // warm-up
        const rates: number[] = [];
        let last: Cell | undefined;
        for (let run = 0; run < runs; run++) {
          const started = process.hrtime.bigint();
          const messages = await RUNNERS[target](port, n, size);
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          last = {
            target,
            size,
            messages,
            seconds: Number(seconds.toFixed(3)),
            messagesPerSecond: Math.round(messages / seconds),
            clientRssMiB: Math.round(process.memoryUsage().rss / 1048576),
            serverRssMiB: Math.round((await rss()) / 1048576),
          };
          rates.push(last.messagesPerSecond);
          process.stdout.write(`${JSON.stringify({ run, ...last })}\n`);
        }
        cells.push({ ...last!, messagesPerSecond: median(rates) });
      } finally {
        child.kill();
      }
    }
  }
  const summary: Record<string, unknown> = {};
  for (const size of new Set(cells.map((cell) => cell.size))) {
    const at = (target: Target): number => cells.find((cell) => cell.size === size && cell.target === target)!.messagesPerSecond;
    summary[size === 16 ? 'small16B' : 'large64KiB'] = {
      tunnelrpc: at('tunnelrpc'),
      grpc: at('grpc'),
      ceiling: at('ceiling'),
      vsCeiling: Number((at('tunnelrpc') / at('ceiling')).toFixed(2)),
      vsGrpc: Number((at('tunnelrpc') / at('grpc')).toFixed(2)),
    };
  }
  process.stdout.write(`${JSON.stringify({ summary, runs, node: process.version })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:streams failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
