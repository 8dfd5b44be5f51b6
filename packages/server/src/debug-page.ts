/**
 * The debug page (ServerOptions.debugPath): Go's /debug/rpc taken further. Per service a table of methods with
 * their signatures, calls, errors by code and p50/p99 latency; the open tunnels with address, age, calls in flight,
 * calls served and bytes; and the same as JSON (`?format=json`). Off unless asked for, and behind `authorize`.
 * Its numbers come from a call observer like any other (ServerOptions.observers), the first one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RpcError, UNREPRESENTABLE_KEY, type CallObserver, type TcpInfo } from '@tunnelrpc/protocol';
import { describeMethod, splitMethod } from '@tunnelrpc/protocol/internal';
import type { MethodTable } from './dispatch.js';
import type { PeerAddress } from './handler-types.js';
import { peerOf } from './peer.js';
import { statusForCode } from './refuse.js';

// Latencies kept per method for the percentiles: the most recent ones, in a ring.
const SAMPLES = 1024;

class MethodStats {
  calls = 0;
  readonly errors = new Map<string, number>();
  readonly #durations = new Float64Array(SAMPLES);
  #count = 0;

  record(ms: number, code: string | undefined): void {
    this.calls++;
    if (code !== undefined) this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    this.#durations[this.#count % SAMPLES] = ms;
    this.#count++;
  }

  percentile(p: number): number | null {
    const n = Math.min(this.#count, SAMPLES);
    if (n === 0) return null;
    const sorted = Array.from(this.#durations.subarray(0, n)).sort((a, b) => a - b);
    return sorted[Math.min(n - 1, Math.ceil((p / 100) * n) - 1)]!;
  }
}

/** TunnelView is what the page shows of one open tunnel. @internal */
export interface TunnelView {
  readonly tunnel: number;
  readonly address: string;
  readonly port: number | undefined;
  readonly ageMs: number;
  readonly inFlight: number;
  readonly served: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** The kernel's TCP_INFO of its socket when the page was made; absent where it cannot be read. */
  readonly tcpInfo: TcpInfo | undefined;
}

/** DebugSnapshot is the JSON form of the page. */
export interface DebugSnapshot {
  readonly generatedAt: string;
  readonly services: Array<{
    name: string;
    methods: Array<{ name: string; kind: string; signature: string; calls: number; errors: Record<string, number>; p50Ms: number | null; p99Ms: number | null }>;
  }>;
  readonly tunnels: TunnelView[];
}

/** DebugPage keeps call statistics and serves the page. @internal */
export class DebugPage {
  readonly path: string;
  readonly #methods: () => MethodTable;
  readonly #stats = new Map<string, MethodStats>();
  readonly #signatures = new Map<string, string>();
  readonly #authorize: ((req: IncomingMessage, peer: PeerAddress) => unknown) | undefined;
  readonly #tunnels: () => TunnelView[];

  constructor(path: string, methods: () => MethodTable, authorize: ((req: IncomingMessage, peer: PeerAddress) => unknown) | undefined, tunnels: () => TunnelView[]) {
    this.path = path;
    this.#methods = methods;
    this.#authorize = authorize;
    this.#tunnels = tunnels;
  }

  /** observer counts every call by method and the code its caller got; unregistered methods count as `_OTHER`. */
  readonly observer: CallObserver = {
    callStarted: () => {},
    callEnded: (method, code, seconds) => {
      const key = method.registered ? method.method : '_OTHER._OTHER';
      let stats = this.#stats.get(key);
      if (stats === undefined) {
        stats = new MethodStats();
        this.#stats.set(key, stats);
      }
      stats.record(seconds * 1000, code === 'OK' ? undefined : code);
    },
  };

  /** matches tells whether a request is for the page. */
  matches(url: string | undefined): boolean {
    if (url === undefined) return false;
    const query = url.indexOf('?');
    return (query === -1 ? url : url.slice(0, query)) === this.path;
  }

  /** serve answers a request for the page: authorize first, then HTML or, with ?format=json, JSON. */
  serve(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', '405 use GET\n', { Allow: 'GET, HEAD' });
      return;
    }
    const authorize = this.#authorize;
    let decision: unknown;
    try {
      // The same authorize as the tunnels, with the peer of the request's own socket.
      decision = authorize === undefined ? undefined : authorize(req, peerOf(req.socket));
    } catch (error) {
      refuse(res, error);
      return;
    }
    Promise.resolve(decision).then(
      () => {
        const json = new URL(req.url ?? '/', 'http://x').searchParams.get('format') === 'json';
        const snapshot = this.snapshot();
        if (json) send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(snapshot, null, 2)}\n`);
        else send(res, 200, 'text/html; charset=utf-8', renderHtml(snapshot, this.path));
      },
      (error: unknown) => refuse(res, error),
    ).catch(() => {
      // The response failed mid-write (the client went away): nothing to answer.
      res.destroy();
    });
  }

  /** snapshot gathers what the page shows, now. */
  snapshot(): DebugSnapshot {
    const services = new Map<string, DebugSnapshot['services'][number]>();
    const row = (service: string, name: string, kind: string, signature: string, stats: MethodStats | undefined): void => {
      let entry = services.get(service);
      if (entry === undefined) {
        entry = { name: service, methods: [] };
        services.set(service, entry);
      }
      entry.methods.push({
        name,
        kind,
        signature,
        calls: stats?.calls ?? 0,
        errors: Object.fromEntries([...(stats?.errors ?? new Map<string, number>())].sort(([a], [b]) => a.localeCompare(b))),
        p50Ms: round(stats?.percentile(50) ?? null),
        p99Ms: round(stats?.percentile(99) ?? null),
      });
    };
    for (const method of this.#methods().entries()) {
      const { service, name } = splitMethod(method.path);
      let signature = this.#signatures.get(method.path);
      if (signature === undefined) {
        const described = describeMethod(name, method.spec);
        signature = `${name}(${schemaText(described.params, 0)}) → ${schemaText(described.result, 0)}`;
        this.#signatures.set(method.path, signature);
      }
      row(service, name, method.spec.notification === true ? 'notification' : method.kind, signature, this.#stats.get(method.path));
    }
    const other = this.#stats.get('_OTHER._OTHER');
    if (other !== undefined) row('_OTHER', '_OTHER', 'unary', 'methods nobody registered', other);
    return { generatedAt: new Date().toISOString(), services: [...services.values()], tunnels: this.#tunnels() };
  }
}

function round(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms * 1000) / 1000;
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function refuse(res: ServerResponse, error: unknown): void {
  const rpc = error instanceof RpcError ? error : undefined;
  const status = rpc === undefined ? 403 : statusForCode(rpc.code);
  send(res, status, 'text/plain; charset=utf-8', `${status} ${(rpc?.message ?? 'not allowed').slice(0, 200)}\n`, status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {});
}

// A short TypeScript-like rendering of a JSON Schema, for the signature column.
function schemaText(schema: unknown, depth: number): string {
  if (typeof schema !== 'object' || schema === null) return 'unknown';
  const s = schema as Record<string, unknown>;
  if (typeof s[UNREPRESENTABLE_KEY] === 'string') return String(s[UNREPRESENTABLE_KEY]);
  if (depth > 3) return '…';
  if (Array.isArray(s['anyOf'])) return (s['anyOf'] as unknown[]).map((each) => schemaText(each, depth + 1)).join(' | ');
  if (Array.isArray(s['oneOf'])) return (s['oneOf'] as unknown[]).map((each) => schemaText(each, depth + 1)).join(' | ');
  if (Array.isArray(s['enum'])) return (s['enum'] as unknown[]).map((each) => JSON.stringify(each)).join(' | ');
  if ('const' in s) return JSON.stringify(s['const']);
  switch (s['type']) {
    case 'object': {
      const properties = (s['properties'] ?? {}) as Record<string, unknown>;
      const required = new Set((s['required'] ?? []) as string[]);
      const fields = Object.entries(properties).map(([key, value]) => `${key}${required.has(key) ? '' : '?'}: ${schemaText(value, depth + 1)}`);
      return `{ ${fields.join(', ')} }`.replace('{  }', '{}');
    }
    case 'array':
      return `${schemaText(s['items'], depth + 1)}[]`;
    case 'integer':
      return 'number';
    case 'null':
    case 'string':
    case 'number':
    case 'boolean':
      return s['type'];
    default:
      return Object.keys(s).filter((key) => key !== '$schema').length === 0 ? 'unknown' : 'value';
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function renderHtml(snapshot: DebugSnapshot, path: string): string {
  const e = escapeHtml;
  const ms = (value: number | null): string => (value === null ? '–' : `${value.toFixed(3)} ms`);
  const services = snapshot.services
    .map((service) => {
      const rows = service.methods
        .map((method) => {
          const errors = Object.entries(method.errors).map(([code, n]) => `<span class="code" data-code="${e(code)}">${e(code)}: ${n}</span>`).join(' ') || '–';
          return `<tr data-method="${e(`${service.name}.${method.name}`)}"><td class="sig">${e(method.signature)}</td><td>${e(method.kind)}</td><td class="calls">${method.calls}</td><td class="errors">${errors}</td><td class="p50">${ms(method.p50Ms)}</td><td class="p99">${ms(method.p99Ms)}</td></tr>`;
        })
        .join('\n');
      return `<h2>Service ${e(service.name)}</h2>\n<table class="methods"><thead><tr><th>method</th><th>kind</th><th>calls</th><th>errors by code</th><th>p50</th><th>p99</th></tr></thead><tbody>\n${rows}\n</tbody></table>`;
    })
    .join('\n');
  const tunnels = snapshot.tunnels
    .map((t) => `<tr data-tunnel="${t.tunnel}"><td>${t.tunnel}</td><td>${e(t.address)}${t.port === undefined ? '' : `:${t.port}`}</td><td>${(t.ageMs / 1000).toFixed(1)} s</td><td class="inflight">${t.inFlight}</td><td class="served">${t.served}</td><td>${t.bytesIn}</td><td>${t.bytesOut}</td>${tcpCells(t.tcpInfo)}</tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tunnelrpc debug</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; background: #fff; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 24px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #c9d1d9; padding: 4px 10px; text-align: left; }
th { background: #eef2f6; } td.calls, td.served, td.inflight { text-align: right; } td.p50, td.p99 { white-space: nowrap; }
.sig { font-family: ui-monospace, monospace; } .code { background: #ffe9e9; color: #8a1010; padding: 0 4px; border-radius: 3px; }
</style></head>
<body>
<h1>tunnelrpc</h1>
<p>Generated ${e(snapshot.generatedAt)}. <a href="${e(path)}?format=json">JSON</a></p>
${services}
<h2>Open tunnels (${snapshot.tunnels.length})</h2>
<table class="tunnels"><thead><tr><th>#</th><th>address</th><th>age</th><th>in flight</th><th>calls served</th><th>bytes in</th><th>bytes out</th><th>rtt</th><th>rtt var</th><th>retransmits (now / total)</th><th>cwnd</th><th>unacked</th><th>lost</th></tr></thead><tbody>
${tunnels}
</tbody></table>
</body></html>
`;
}

// The kernel's view of a tunnel (TCP_INFO), or one cell saying it cannot be read here (no koffi, not Linux, unix).
function tcpCells(info: TcpInfo | undefined): string {
  if (info === undefined) return '<td class="rtt" colspan="6">n/a</td>';
  return `<td class="rtt">${info.rtt.toFixed(3)} ms</td><td>${info.rttVariance.toFixed(3)} ms</td><td>${info.retransmits} / ${info.totalRetransmits}</td><td>${info.congestionWindow}</td><td>${info.unacked}</td><td>${info.lost}</td>`;
}
