/**
 * createPrometheus: the metrics of go-grpc-middleware's Prometheus provider, for tunnelrpc, as call observers and
 * event listeners that a user could have written. All metrics sit in one table, registered on a private Registry
 * unless one is given; a second instance on the same registry reuses the metrics instead of failing on a
 * duplicate name.
 *
 * Over 400 lines: every metric of the provider is defined in one table and registered together, so that a second
 * instance on the same registry finds them all; the HTTP endpoint that serves them is its own file, serve.ts.
 */
import type { Server as HttpServer } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { ERROR_CODES, RpcError, type CallObserver, type ObservedMethod, type CallType, type ServiceContract, type TcpInfo } from '@tunnelrpc/protocol';
import type { ServerListener } from '@tunnelrpc/server';
import type { ClientListener } from '@tunnelrpc/client';
import { CALL_TYPES, callTypeOf, checkBoolean, orDefault } from '@tunnelrpc/protocol/internal';
import { serveMetrics } from './serve.js';

/**
 * RPC_DURATION_BUCKETS are the OpenTelemetry RPC duration buckets, in seconds (the semantic conventions' advice for
 * rpc.server.duration and rpc.client.duration).
 */
export const RPC_DURATION_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);

/** OTHER_METHOD is the `method` (and `service`) label of calls to methods that are not registered. */
export const OTHER_METHOD = '_OTHER';

/** PrometheusOptions configures createPrometheus. Every field is optional. */
export interface PrometheusOptions {
  /**
   * Registry the metrics go to. Default: a new private Registry (never prom-client's global one), read with
   * `metrics.registry` or served with `metrics.serve()`.
   */
  registry?: Registry;
  /**
   * Contracts whose every method x code series is created at zero up front (so rates and ratios exist before the
   * first call), on both the server and the client metrics. Default none: series appear with their first call.
   */
  services?: readonly ServiceContract[];
  /** Histogram buckets in seconds, ascending. Default RPC_DURATION_BUCKETS (5 ms … 10 s, 14 buckets). */
  buckets?: readonly number[];
  /**
   * Also collect prom-client's default process metrics (CPU, memory, event loop lag) into the registry. Default
   * false, as a library should not add process metrics on its own.
   */
  collectDefaultMetrics?: boolean;
}

/** ServeOptions configures TunnelMetrics.serve. */
export interface ServeOptions {
  /** Path of the route. Default "/metrics". */
  path?: string;
}

/** TunnelMetrics is what createPrometheus returns: hand the observers and listeners to the server and client. */
export interface TunnelMetrics {
  /** The registry the metrics are on. */
  readonly registry: Registry;
  /** For ServerOptions.observers: started, handled, handling seconds, calls in flight, stream messages. */
  readonly serverObserver: CallObserver;
  /** For ServerOptions.listeners: tunnels open, opened, refused, bytes in and out; each open tunnel's TCP_INFO gauges, read at scrape time. */
  readonly serverListener: ServerListener;
  /** For ClientOptions.observers: the tunnelrpc_client_* mirror of the server call metrics. */
  readonly clientObserver: CallObserver;
  /** For ClientOptions.listeners: tunnels open, connects, disconnects and reconnects; each open tunnel's TCP_INFO gauges, read at scrape time. */
  readonly clientListener: ClientListener;
  /** addServices creates every method x code series of `services` at zero (as PrometheusOptions.services). */
  addServices(...services: ServiceContract[]): void;
  /**
   * serve answers `GET path` (default /metrics) on `server` with the registry in the Prometheus text format, in
   * front of the server's other request listeners (an RpcServer attached before or after is fine). Other paths
   * go on to those listeners.
   */
  serve(server: HttpServer, options?: ServeOptions): void;
}

const CALL_LABELS = ['service', 'method', 'type'] as const;
const HANDLED_LABELS = ['service', 'method', 'type', 'code'] as const;
type CallLabel = (typeof CALL_LABELS)[number];
type Labels = { service: string; method: string; type: string };
const CODES: readonly string[] = ['OK', ...ERROR_CODES];
const CODE_INDEX = new Map(CODES.map((code, index) => [code, index]));
const UNKNOWN_INDEX = CODE_INDEX.get('UNKNOWN')!;

// One series of call metrics (service, method, type), counted in plain numbers on the call path; prom-client reads
// them only at scrape time (each metric's collect), so a call costs a Map lookup and a few additions, not label
// hashing and validation in prom-client (which cost several times a small call).
class CallSeries {
  readonly labels: Labels;
  /** Created up front (PrometheusOptions.services): every code is exported, at zero too. */
  readonly declared: boolean;
  started = 0;
  readonly handled = new Float64Array(CODES.length);
  // Per bucket, not cumulative (prom-client's own layout); above the last bound only `count` grows.
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;
  /** Stream messages received and sent (streams only; a unary call has none). */
  received = 0;
  sent = 0;

  constructor(labels: Labels, bucketCount: number, declared: boolean) {
    this.labels = labels;
    this.buckets = new Float64Array(bucketCount);
    this.declared = declared;
  }
}

// The call metrics of one side, shared by every createPrometheus on the same registry.
class SideState {
  readonly #bounds: readonly number[];
  // One table per call type (CALL_TYPES), each keyed by the wire name.
  readonly #byType = new Map<CallType, Map<string, CallSeries>>();
  inFlight = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    for (const type of CALL_TYPES) this.#byType.set(type, new Map());
  }

  series(service: string, method: string, wire: string, type: CallType, declared = false): CallSeries {
    const map = this.#byType.get(type)!;
    let series = map.get(wire);
    if (series === undefined) {
      series = new CallSeries({ service, method, type }, this.#bounds.length, declared);
      map.set(wire, series);
    }
    return series;
  }

  observe(series: CallSeries, seconds: number, code: string): void {
    series.handled[code === 'OK' ? 0 : (CODE_INDEX.get(code) ?? UNKNOWN_INDEX)]!++;
    series.sum += seconds;
    series.count++;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]!) {
        series.buckets[i]!++;
        return;
      }
    }
  }

  all(): CallSeries[] {
    const all: CallSeries[] = [];
    for (const map of this.#byType.values()) all.push(...map.values());
    return all;
  }

  get bounds(): readonly number[] {
    return this.#bounds;
  }
}

interface RegistryState {
  readonly server: SideState;
  readonly client: SideState;
  readonly serverTunnels: TunnelSampler;
  readonly clientTunnels: TunnelSampler;
}

// Metrics are created once per registry (a second createPrometheus on it shares them, as envelop does).
const STATES = new WeakMap<Registry, RegistryState>();

// The shape of a prom-client histogram entry as collect() fills it (prom-client 15 lib/histogram.js).
interface HistogramEntry {
  labels: unknown;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

function defineSide(registry: Registry, prefix: 'server' | 'client', verb: string, state: SideState): void {
  new Counter<CallLabel>({
    name: `tunnelrpc_${prefix}_started_total`,
    help: `Calls ${verb} started, by service, method and type (unary, notification, server_stream, client_stream, bidi_stream).`,
    labelNames: CALL_LABELS,
    registers: [registry],
    collect(this: Counter<CallLabel>) {
      this.reset();
      for (const series of state.all()) this.inc(series.labels, series.started);
    },
  });
  new Counter<(typeof HANDLED_LABELS)[number]>({
    name: `tunnelrpc_${prefix}_handled_total`,
    help: `Calls ${verb} completed, by service, method, type and code (OK or an RpcError code).`,
    labelNames: HANDLED_LABELS,
    registers: [registry],
    collect(this: Counter<(typeof HANDLED_LABELS)[number]>) {
      this.reset();
      for (const series of state.all()) {
        for (let i = 0; i < CODES.length; i++) {
          const value = series.handled[i]!;
          if (value > 0 || series.declared) this.inc({ ...series.labels, code: CODES[i]! }, value);
        }
      }
    },
  });
  new Histogram<CallLabel>({
    name: `tunnelrpc_${prefix}_handling_seconds`,
    help: `Seconds from the start of a call ${verb} to its outcome.`,
    labelNames: CALL_LABELS,
    buckets: [...state.bounds],
    registers: [registry],
    collect(this: Histogram<CallLabel>) {
      this.reset();
      const all = state.all();
      for (const series of all) this.zero(series.labels);
      const entries = new Map<unknown, HistogramEntry>();
      for (const entry of Object.values((this as unknown as { hashMap: Record<string, HistogramEntry> }).hashMap)) entries.set(entry.labels, entry);
      for (const series of all) {
        const entry = entries.get(series.labels);
        if (entry === undefined) continue;
        state.bounds.forEach((bound, i) => (entry.bucketValues[bound] = series.buckets[i]!));
        entry.sum = series.sum;
        entry.count = series.count;
      }
    },
  });
  for (const [direction, read] of [['received', (series: CallSeries) => series.received], ['sent', (series: CallSeries) => series.sent]] as const) {
    new Counter<CallLabel>({
      name: `tunnelrpc_${prefix}_msg_${direction}_total`,
      help: `Stream messages ${direction} ${prefix === 'server' ? 'by the server' : 'by clients'}, by service, method and type.`,
      labelNames: CALL_LABELS,
      registers: [registry],
      collect(this: Counter<CallLabel>) {
        this.reset();
        for (const series of state.all()) if (series.labels.type.endsWith('_stream')) this.inc(series.labels, read(series));
      },
    });
  }
  new Gauge({
    name: `tunnelrpc_${prefix}_calls_in_flight`,
    help: `Calls ${verb} running now.`,
    registers: [registry],
    collect(this: Gauge) {
      this.set(state.inFlight);
    },
  });
}

// The open tunnels of one side and how to read each one's TCP_INFO: sampled when Prometheus scrapes, never per
// call. A tunnel whose reader gives nothing (closed, or no koffi / not Linux) leaves the table at that scrape.
class TunnelSampler {
  readonly #readers = new Map<string, { labels: { tunnel: string; peer: string }; read: () => TcpInfo | undefined }>();
  #sampled: Array<[{ tunnel: string; peer: string }, TcpInfo]> | undefined;
  next = 0;

  add(tunnel: string, peer: string, read: unknown): void {
    if (typeof read === 'function') this.#readers.set(tunnel, { labels: { tunnel, peer }, read: read as () => TcpInfo | undefined });
  }

  delete(tunnel: string): void {
    this.#readers.delete(tunnel);
  }

  // One read per tunnel per scrape, shared by the gauges: the cache lasts until the scrape's tick is over.
  sample(): ReadonlyArray<[{ tunnel: string; peer: string }, TcpInfo]> {
    if (this.#sampled !== undefined) return this.#sampled;
    const sampled: Array<[{ tunnel: string; peer: string }, TcpInfo]> = [];
    for (const [key, reader] of this.#readers) {
      let info: TcpInfo | undefined;
      try {
        info = reader.read();
      } catch {
        info = undefined;
      }
      if (info === undefined) this.#readers.delete(key);
      else sampled.push([reader.labels, info]);
    }
    this.#sampled = sampled;
    setImmediate(() => (this.#sampled = undefined)).unref();
    return sampled;
  }
}

const TCP_GAUGES: ReadonlyArray<[string, string, (info: TcpInfo) => number]> = [
  ['rtt_seconds', 'Smoothed round-trip time of the tunnel\'s TCP connection (kernel TCP_INFO).', (info) => info.rtt / 1000],
  ['rtt_variance_seconds', 'Mean deviation of that round-trip time.', (info) => info.rttVariance / 1000],
  ['retransmits', 'Retransmission timeouts in a row without an acknowledgment, now.', (info) => info.retransmits],
  ['retransmitted_segments', 'Segments retransmitted over the connection\'s life.', (info) => info.totalRetransmits],
  ['congestion_window_segments', 'Congestion window, in segments.', (info) => info.congestionWindow],
  ['unacked_segments', 'Segments sent and not yet acknowledged.', (info) => info.unacked],
  ['lost_segments', 'Segments the kernel counts as lost now.', (info) => info.lost],
  ['acked_bytes', 'Bytes the peer acknowledged on this tunnel.', (info) => info.bytesAcked],
  ['received_bytes', 'Bytes received on this tunnel.', (info) => info.bytesReceived],
];

// Per-tunnel gauges of one side, labelled by tunnel number and peer, filled at scrape time from the sampler.
function defineTcpGauges(registry: Registry, prefix: 'server' | 'client', sampler: TunnelSampler): void {
  for (const [suffix, help, value] of TCP_GAUGES) {
    new Gauge({
      name: `tunnelrpc_${prefix}_tunnel_${suffix}`,
      help,
      labelNames: ['tunnel', 'peer'],
      registers: [registry],
      collect(this: Gauge<'tunnel' | 'peer'>) {
        this.reset();
        for (const [labels, info] of sampler.sample()) this.set(labels, value(info));
      },
    });
  }
}

/** createPrometheus builds the metrics and the interceptors and listeners that feed them. */
export function createPrometheus(options: PrometheusOptions = {}): TunnelMetrics {
  const registry = options.registry ?? new Registry();
  if (!(registry instanceof Registry)) throw new RpcError('INVALID_ARGUMENT', 'option registry must be a prom-client Registry');
  const buckets = checkBuckets(options.buckets ?? RPC_DURATION_BUCKETS);
  if (checkBoolean('collectDefaultMetrics', orDefault(options.collectDefaultMetrics, false))) collectDefaultMetrics({ register: registry });

  let state = STATES.get(registry);
  if (state === undefined) {
    state = { server: new SideState(buckets), client: new SideState(buckets), serverTunnels: new TunnelSampler(), clientTunnels: new TunnelSampler() };
    STATES.set(registry, state);
    defineSide(registry, 'server', 'handled by this server', state.server);
    defineSide(registry, 'client', 'made by this client', state.client);
    defineTcpGauges(registry, 'server', state.serverTunnels);
    defineTcpGauges(registry, 'client', state.clientTunnels);
  }
  const { server, client, serverTunnels: serverSampler, clientTunnels: clientSampler } = state;
  const reuse = <M extends Metric>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
    reuse(name, () => new Counter<L>({ name, help, labelNames, registers: [registry] }));
  const gauge = (name: string, help: string): Gauge<string> => reuse(name, () => new Gauge({ name, help, registers: [registry] }));

  const serverTunnels = {
    open: gauge('tunnelrpc_server_tunnels_open', 'Tunnels open now.'),
    opened: counter('tunnelrpc_server_tunnels_opened_total', 'Tunnels opened (CONNECT answered 200).'),
    refused: counter('tunnelrpc_server_tunnels_refused_total', 'CONNECTs refused, by HTTP status.', ['status'] as const),
    bytesIn: counter('tunnelrpc_server_received_bytes_total', 'Bytes read from tunnels, counted when each tunnel closes.'),
    bytesOut: counter('tunnelrpc_server_sent_bytes_total', 'Bytes written to tunnels, counted when each tunnel closes.'),
  };
  const clientTunnels = {
    open: gauge('tunnelrpc_client_tunnels_open', 'Tunnels this process holds open now.'),
    connects: counter('tunnelrpc_client_connects_total', 'Tunnels opened by clients.'),
    disconnects: counter('tunnelrpc_client_disconnects_total', 'Tunnels lost or closed, by code (OK for a clean close).', ['code'] as const),
    reconnects: counter('tunnelrpc_client_reconnects_total', 'Redials scheduled after a lost tunnel or a failed dial.'),
    bytesIn: counter('tunnelrpc_client_received_bytes_total', 'Bytes read from tunnels, counted when each tunnel closes.'),
    bytesOut: counter('tunnelrpc_client_sent_bytes_total', 'Bytes written to tunnels, counted when each tunnel closes.'),
  };

  const addServices = (...services: ServiceContract[]): void => {
    for (const contract of services) {
      for (const [name, spec] of Object.entries(contract.methods)) {
        const type = callTypeOf(spec.kind ?? 'unary', spec.notification === true);
        for (const side of [server, client]) side.series(contract.name, name, `${contract.name}.${name}`, type, true);
      }
    }
  };
  addServices(...(options.services ?? []));

  return {
    registry,
    serverObserver: observe(server),
    clientObserver: observe(client),
    serverListener: (event) => {
      switch (event.type) {
        case 'open':
          serverTunnels.open.inc();
          serverTunnels.opened.inc();
          serverSampler.add(String(event.tunnel), `${event.address}:${event.port ?? ''}`, event.tcpInfo);
          break;
        case 'refused':
          serverTunnels.refused.inc({ status: String(event.status) });
          break;
        case 'close':
          serverSampler.delete(String(event.tunnel));
          serverTunnels.open.dec();
          serverTunnels.bytesIn.inc(event.bytesIn);
          serverTunnels.bytesOut.inc(event.bytesOut);
          break;
        default:
          break;
      }
    },
    clientListener: (event) => {
      switch (event.type) {
        case 'connected':
          clientTunnels.open.inc();
          clientTunnels.connects.inc();
          // Numbered here: a client's events carry no tunnel number. A closed tunnel leaves at the next scrape.
          clientSampler.add(String(++clientSampler.next), event.address === undefined ? event.target : `${event.address}:${event.port ?? ''}`, event.tcpInfo);
          break;
        case 'disconnected':
          clientTunnels.open.dec();
          clientTunnels.disconnects.inc({ code: event.code ?? 'OK' });
          clientTunnels.bytesIn.inc(event.bytesIn);
          clientTunnels.bytesOut.inc(event.bytesOut);
          break;
        case 'reconnecting':
          clientTunnels.reconnects.inc();
          break;
        default:
          break;
      }
    },
    addServices,
    serve: (http, serveOptions = {}) => serveMetrics(http, registry, serveOptions.path ?? '/metrics'),
  };
}

// One observer per side. The pipeline hands it the same ObservedMethod for every call of a method and type, so the
// series is found by that object (one Map lookup) and a call costs a few additions: no closure, no promise.
function observe(state: SideState): CallObserver {
  const byMethod = new Map<ObservedMethod, CallSeries>();
  // Calls come in runs of one method: the last one found is checked before the Map.
  let lastMethod: ObservedMethod | undefined;
  let lastSeries: CallSeries | undefined;
  const seriesOf = (method: ObservedMethod): CallSeries => {
    if (method === lastMethod) return lastSeries!;
    let series = byMethod.get(method);
    if (series === undefined) {
      series = method.registered ? state.series(method.service, method.name, method.method, method.type) : state.series(OTHER_METHOD, OTHER_METHOD, OTHER_METHOD, method.type);
      byMethod.set(method, series);
    }
    lastMethod = method;
    lastSeries = series;
    return series;
  };
  return {
    callStarted(method) {
      seriesOf(method).started++;
      state.inFlight++;
    },
    callEnded(method, code, seconds) {
      state.inFlight--;
      state.observe(seriesOf(method), seconds, code);
    },
    streamMessage(method, direction) {
      const series = seriesOf(method);
      if (direction === 'received') series.received++;
      else series.sent++;
    },
  };
}

function checkBuckets(buckets: readonly number[]): readonly number[] {
  const ok = Array.isArray(buckets) && buckets.length > 0 && buckets.every((each, i) => Number.isFinite(each) && each > 0 && (i === 0 || each > buckets[i - 1]!));
  if (!ok) throw new RpcError('INVALID_ARGUMENT', 'option buckets must be a non-empty array of ascending positive numbers of seconds, such as RPC_DURATION_BUCKETS');
  return buckets;
}
