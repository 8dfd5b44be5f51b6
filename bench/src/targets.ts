/**
 * The peers of a run: how to start each one's server and client, and how each puts the payload on the wire.
 */
import { join } from 'node:path';
import type { PayloadName } from './payload.js';

/** TARGET_NAMES lists every peer in table order; tunnelrpc comes first, the others are compared with it. */
export const TARGET_NAMES = ['tunnelrpc', 'baseline', 'grpc', 'undici', 'ceiling', 'go', 'go-wire', 'go-to-node', 'node-to-go'] as const;

/** GO_WIRE_TARGETS are the peers that need the Go package's bench peer (go/internal/benchpeer). */
export const GO_WIRE_TARGETS: readonly TargetName[] = ['go-wire', 'go-to-node', 'node-to-go'];

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
      'RpcServer + connect() + client.call("Echo.echo", value) with the Echo fixture (input and output z.unknown()): ' +
      'the payload is the params of the request [0,id,method,params,{timeout}] and the result of the response ' +
      '[1,id,nil,result] (bytes a MessagePack bin, strings and objects maps, the timestamp a timestamp ext), behind ' +
      'the 4-byte frame length, over one CONNECT tunnel per connection',
  },
  baseline: {
    label: 'tunnelrpc baseline',
    wire:
      'the same tunnelrpc server and client, built from the revision given to --baseline in a temporary git worktree ' +
      '(its own packages, its own bench harness), run interleaved with the working tree: a same-run A/B',
  },
  grpc: {
    label: '@grpc/grpc-js',
    wire:
      'a generic unary method /bench.Echo/Echo defined without a .proto: bytes are the raw gRPC message (identity ' +
      'serialize/deserialize), strings and objects a MessagePack message (msgpackr, decoded and encoded again on ' +
      'both ends; no protobuf schema exists for a generic method); 5-byte gRPC prefix, HTTP/2 HEADERS + DATA ' +
      'frames, HPACK; one channel per connection',
  },
  undici: {
    label: 'undici HTTP/1.1',
    wire:
      'POST /echo with a Content-Length body, answered 200 by node:http: bytes as application/octet-stream echoed ' +
      'as they are, strings and objects as application/json parsed and serialized again on both ends (the ' +
      'timestamp becomes an ISO string); undici Client with pipelining C (requests marked idempotent, blocking: ' +
      'false), one per connection',
  },
  ceiling: {
    label: 'msgpackr socket',
    wire:
      'msgpackr [id, value] behind a 4-byte length on a bare TCP socket (TCP_NODELAY both ends): one pack per frame ' +
      'into msgpackr\'s buffer with the length reserved in front (byte arrays of 16 KiB or more written from the ' +
      'caller\'s memory behind a small head, as tunnelrpc does), decoded in place from the received chunk (only ' +
      'frames split across reads are joined), the server decoding the value and encoding it again; writes ' +
      'coalesced per tick and capped at 32 frames or 64 KiB; no validation, deadlines or limits: the ceiling for tunnelrpc',
  },
  go: {
    label: 'Go net/rpc',
    wire:
      'net/rpc with rpc.HandleHTTP (its own CONNECT tunnel) and gob: Echo.Bytes([]byte) -> []byte, ' +
      'Echo.String(struct{A int; B string}), Echo.Object(struct{Items []Record}) with typed records (a nested map, ' +
      'time.Time); the client is Go too (rpc.DialHTTP, C goroutines over each rpc.Client)',
  },
  'go-wire': {
    label: 'Go wire-v1',
    wire:
      'the Go package (go/) on both ends: the same net/rpc receivers as Go net/rpc (Echo.Bytes, Echo.String, ' +
      'Echo.Object, typed, json tags) served by tunnelrpc.Handler and called through tunnelrpc.Client: wire-v1 ' +
      'frames and MessagePack (vmihailenco/msgpack) instead of gob, every limit and deadline on',
  },
  'go-to-node': {
    label: 'Go client → Node',
    wire:
      'the Go package\'s client calling Echo.echo on the tunnelrpc RpcServer (as the tunnelrpc row) with the typed Go ' +
      'values of the Go rows, decoded back into them',
  },
  'node-to-go': {
    label: 'Node client → Go',
    wire: 'the tunnelrpc client (as the tunnelrpc row) calling Echo.echo (interface{} in and out) on the Go package\'s server',
  },
};

/** Command is a program and its arguments. */
export interface Command {
  command: string;
  args: string[];
}

/**
 * CellSpec is one cell of the matrix: a payload, the calls outstanding per connection (C), and how many client
 * processes (P) each open how many connections (T); one process with one connection unless the cell says more.
 */
export interface CellSpec {
  payload: PayloadName;
  /** The payload's size on a MessagePack wire (payload.ts payloadBytes). */
  bytes: number;
  concurrency: number;
  tunnels: number;
  processes: number;
}

/** cellKey names a cell uniquely, as the CLI spells it: `small:256`, `small:4:16x4`. */
export function cellKey(cell: CellSpec): string {
  return cell.tunnels === 1 && cell.processes === 1 ? `${cell.payload}:${cell.concurrency}` : `${cell.payload}:${cell.concurrency}:${cell.tunnels}x${cell.processes}`;
}

/** cellConcurrency describes the load: `16`, or `4 × 16 tunnels × 4 procs` for a many-clients cell. */
export function cellConcurrency(cell: Pick<CellSpec, 'concurrency' | 'tunnels' | 'processes'>): string {
  return cell.tunnels === 1 && cell.processes === 1 ? String(cell.concurrency) : `${cell.concurrency} × ${cell.tunnels} tunnels × ${cell.processes} procs`;
}

/** totalConcurrency is the calls outstanding at the server: C × T × P. */
export function totalConcurrency(cell: Pick<CellSpec, 'concurrency' | 'tunnels' | 'processes'>): number {
  return cell.concurrency * cell.tunnels * cell.processes;
}

/** serverCommand starts the peer's server; it prints {"port":N} once listening. */
export function serverCommand(
  target: TargetName,
  cell: CellSpec,
  distDir: string,
  goBinary: string | undefined,
  nodeOptions: readonly string[] = [],
  goWireBinary?: string,
): Command {
  if (target === 'go') return { command: requireGo(goBinary), args: ['-mode', 'server'] };
  if (target === 'go-wire' || target === 'node-to-go') return { command: requireGo(goWireBinary), args: ['-mode', 'server', '-concurrency', String(cell.concurrency)] };
  const script = target === 'go-to-node' || target === 'baseline' ? 'tunnelrpc' : target;
  return {
    command: process.execPath,
    args: [...nodeOptions, join(distDir, 'servers', `${script}.js`), '--concurrency', String(cell.concurrency), '--payload', cell.payload],
  };
}

/** clientCommand starts the peer's closed-loop client against `port`. */
export function clientCommand(
  target: TargetName,
  cell: CellSpec,
  port: number,
  timing: { seconds: number; warmup: number },
  distDir: string,
  goBinary: string | undefined,
  nodeOptions: readonly string[] = [],
  goWireBinary?: string,
): Command {
  const common = { port, concurrency: cell.concurrency, payload: cell.payload, connections: cell.tunnels, seconds: timing.seconds, warmup: timing.warmup };
  if (target === 'go' || target === 'go-wire' || target === 'go-to-node') {
    const args = Object.entries(common).flatMap(([name, value]) => [`-${name}`, String(value)]);
    if (target === 'go') return { command: requireGo(goBinary), args: ['-mode', 'client', ...args, '-wait-go'] };
    return { command: requireGo(goWireBinary), args: ['-mode', 'client', ...args, '-call', target === 'go-wire' ? 'typed' : 'echo', '-wait-go'] };
  }
  const script = target === 'node-to-go' || target === 'baseline' ? 'tunnelrpc' : target;
  const args = Object.entries(common).flatMap(([name, value]) => [`--${name}`, String(value)]);
  return { command: process.execPath, args: [...nodeOptions, join(distDir, 'clients', `${script}.js`), ...args, '--wait-go', '1'] };
}

function requireGo(binary: string | undefined): string {
  if (binary === undefined) throw new Error('the Go peer was not built');
  return binary;
}
