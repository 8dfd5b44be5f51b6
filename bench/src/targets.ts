/**
 * The peers of a run: how to start each one's server and client, and how each puts the payload on the wire.
 */
import { join } from 'node:path';

/** TARGET_NAMES lists every peer in table order; tunnelrpc comes first, the others are compared with it. */
export const TARGET_NAMES = ['tunnelrpc', 'grpc', 'undici', 'ceiling', 'go'] as const;

/** TargetName is one peer of the run. */
export type TargetName = (typeof TARGET_NAMES)[number];

/** isTargetName tells whether `name` is one of TARGET_NAMES. */
export function isTargetName(name: string): name is TargetName {
  return (TARGET_NAMES as readonly string[]).includes(name);
}

/** TARGET_INFO says what each peer is and how its echo travels; RESULTS.md prints it. */
export const TARGET_INFO: Readonly<Record<TargetName, { label: string; wire: string }>> = {
  tunnelrpc: {
    label: 'tunnelrpc',
    wire:
      'RpcServer + connect() + client.call("Echo.echo", bytes) with the Echo fixture (input and output z.unknown()): ' +
      'the payload is a MessagePack bin inside the request [0,id,method,params,{timeout}] and the response ' +
      '[1,id,nil,result], behind the 4-byte frame length, over one CONNECT tunnel',
  },
  grpc: {
    label: '@grpc/grpc-js',
    wire:
      'a generic unary method /bench.Echo/Echo defined without a .proto, identity serialize/deserialize: the raw ' +
      'payload bytes are the gRPC message (5-byte gRPC prefix, HTTP/2 HEADERS + DATA frames, HPACK), one channel',
  },
  undici: {
    label: 'undici HTTP/1.1',
    wire:
      'POST /echo with the raw payload as an application/octet-stream body and Content-Length, answered 200 with ' +
      'the same body by node:http; undici Client with pipelining C (requests marked idempotent, blocking: false)',
  },
  ceiling: {
    label: 'msgpackr socket',
    wire:
      'msgpackr [id, payload] (payload a bin) behind a 4-byte length on a bare TCP socket; writes coalesced per ' +
      'tick and capped at 32 frames or 64 KiB; no validation, deadlines or limits: the ceiling for tunnelrpc',
  },
  go: {
    label: 'Go net/rpc',
    wire:
      'net/rpc with rpc.HandleHTTP (its own CONNECT tunnel) and gob: Echo.Echo([]byte) -> []byte; the client is ' +
      'Go too (rpc.DialHTTP, C goroutines over one rpc.Client)',
  },
};

/** Command is a program and its arguments. */
export interface Command {
  command: string;
  args: string[];
}

/** CellSpec is one cell of the matrix: a payload size and a concurrency. */
export interface CellSpec {
  payload: string;
  bytes: number;
  concurrency: number;
}

/** serverCommand starts the peer's server; it prints {"port":N} once listening. */
export function serverCommand(target: TargetName, cell: CellSpec, distDir: string, goBinary: string | undefined): Command {
  if (target === 'go') return { command: requireGo(goBinary), args: ['-mode', 'server'] };
  return { command: process.execPath, args: [join(distDir, 'servers', `${target}.js`), '--concurrency', String(cell.concurrency)] };
}

/** clientCommand starts the peer's closed-loop client against `port`. */
export function clientCommand(
  target: TargetName,
  cell: CellSpec,
  port: number,
  timing: { seconds: number; warmup: number },
  distDir: string,
  goBinary: string | undefined,
): Command {
  const common = { port, concurrency: cell.concurrency, bytes: cell.bytes, seconds: timing.seconds, warmup: timing.warmup };
  if (target === 'go') {
    const args = Object.entries(common).flatMap(([name, value]) => [`-${name}`, String(value)]);
    return { command: requireGo(goBinary), args: ['-mode', 'client', ...args, '-wait-go'] };
  }
  const args = Object.entries(common).flatMap(([name, value]) => [`--${name}`, String(value)]);
  return { command: process.execPath, args: [join(distDir, 'clients', `${target}.js`), ...args, '--wait-go', '1'] };
}

function requireGo(binary: string | undefined): string {
  if (binary === undefined) throw new Error('the Go peer was not built');
  return binary;
}
