/**
 * Turning measurements into the report: medians per cell and peer, the ratios tunnelrpc/peer, and the table.
 */
import { cellPlace, type CellPlace, type Measurement } from './measure-cell.js';
import { describePayload } from './payload.js';
import { TARGET_INFO, cellConcurrency, cellKey, totalConcurrency, type CellSpec, type TargetName } from './targets.js';

/** CellSummary is one peer on one cell: the median of each metric over the runs. */
export interface CellSummary extends CellPlace {
  kind: 'cell';
  runs: number;
  callsPerSec: number | undefined;
  p50us: number | undefined;
  p99us: number | undefined;
  serverCpuSPer1M: number | undefined;
  serverRssMiB: number | undefined;
  serverPeakRssMiB: number | undefined;
  clientCpuSPer1M: number | undefined;
  errors: number;
  /** tunnelrpc's value divided by this peer's, per metric (undefined for tunnelrpc itself or without it). */
  ratio: { callsPerSec?: number; p50us?: number; p99us?: number; serverCpuSPer1M?: number } | undefined;
  samples: Measurement[];
}

const MIB = 1024 * 1024;

/** median of the defined numbers, or undefined when there are none. */
export function median(values: readonly (number | undefined)[]): number | undefined {
  const sorted = values.filter((value): value is number => value !== undefined && Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** summarize groups measurements by cell and peer (in the given orders) and takes medians and ratios. */
export function summarize(measurements: readonly Measurement[], cells: readonly CellSpec[], targets: readonly TargetName[]): CellSummary[] {
  const summaries: CellSummary[] = [];
  for (const cell of cells) {
    const row: CellSummary[] = [];
    const key = cellKey(cell);
    for (const target of targets) {
      const samples = measurements.filter((m) => m.target === target && m.cell === key);
      if (samples.length === 0) continue;
      const ok = samples.filter((m) => m.calls > 0);
      const mib = (bytes: number | undefined): number | undefined => (bytes === undefined ? undefined : bytes / MIB);
      row.push({
        kind: 'cell',
        ...cellPlace(target, cell),
        runs: samples.length,
        callsPerSec: median(samples.map((m) => m.callsPerSec)),
        p50us: median(ok.map((m) => m.p50us)),
        p99us: median(ok.map((m) => m.p99us)),
        serverCpuSPer1M: median(ok.map((m) => m.serverCpuSPer1M)),
        serverRssMiB: median(ok.map((m) => mib(m.serverRssBytes))),
        serverPeakRssMiB: median(ok.map((m) => mib(m.serverPeakRssBytes))),
        clientCpuSPer1M: median(ok.map((m) => m.clientCpuSPer1M)),
        errors: samples.reduce((sum, m) => sum + m.errors, 0),
        ratio: undefined,
        samples,
      });
    }
    const base = row.find((summary) => summary.target === 'tunnelrpc');
    if (base !== undefined) {
      const divide = (a: number | undefined, b: number | undefined): number | undefined =>
        a === undefined || b === undefined || b === 0 ? undefined : a / b;
      for (const summary of row) {
        if (summary === base) continue;
        summary.ratio = {
          callsPerSec: divide(base.callsPerSec, summary.callsPerSec),
          p50us: divide(base.p50us, summary.p50us),
          p99us: divide(base.p99us, summary.p99us),
          serverCpuSPer1M: divide(base.serverCpuSPer1M, summary.serverCpuSPer1M),
        };
      }
    }
    summaries.push(...row);
  }
  return summaries;
}

/** renderTable renders the summaries as one Markdown table (readable in a terminal too). */
export function renderTable(summaries: readonly CellSummary[]): string {
  const header = [
    'payload',
    'C',
    'peer',
    'calls/s',
    'p50 µs',
    'p99 µs',
    'server CPU s/1M calls',
    'server RSS MiB',
    'tunnelrpc/peer calls/s',
    'tunnelrpc/peer p99',
    'tunnelrpc/peer CPU',
  ];
  const rows = summaries.map((s) => [
    `${s.payload} (${describePayload(s.payload)})`,
    cellConcurrency(s),
    TARGET_INFO[s.target].label + (s.errors > 0 ? ` (${s.errors} errors)` : ''),
    fixed(s.callsPerSec, 0, true),
    fixed(s.p50us, 1),
    fixed(s.p99us, 1),
    fixed(s.serverCpuSPer1M, 2),
    fixed(s.serverRssMiB, 1),
    s.target === 'tunnelrpc' ? '—' : times(s.ratio?.callsPerSec),
    s.target === 'tunnelrpc' ? '—' : times(s.ratio?.p99us),
    s.target === 'tunnelrpc' ? '—' : times(s.ratio?.serverCpuSPer1M),
  ]);
  const numeric = new Set([1, 3, 4, 5, 6, 7, 8, 9, 10]);
  return renderMarkdownTable(header, rows, numeric);
}

/** ManyClientsRow compares one peer's server CPU per call in a many-clients cell with a one-tunnel cell. */
export interface ManyClientsRow {
  kind: 'many-clients';
  target: TargetName;
  cell: string;
  baseCell: string;
  serverCpuSPer1M: number | undefined;
  baseServerCpuSPer1M: number | undefined;
  /** many-clients ÷ one-tunnel server CPU per call: above 1× means the many tunnels cost the server more per call. */
  cpuRatio: number | undefined;
  callsPerSec: number | undefined;
  baseCallsPerSec: number | undefined;
}

/**
 * compareManyClients pairs every many-clients cell with the one-tunnel cell of the same payload and the same
 * total concurrency (or, without one in the run, the one-tunnel cell of that payload with the most concurrency).
 */
export function compareManyClients(summaries: readonly CellSummary[]): ManyClientsRow[] {
  const rows: ManyClientsRow[] = [];
  for (const many of summaries) {
    if (many.tunnels === 1 && many.processes === 1) continue;
    const candidates = summaries.filter((s) => s.target === many.target && s.payload === many.payload && s.tunnels === 1 && s.processes === 1);
    const total = totalConcurrency(many);
    const base = candidates.find((s) => s.concurrency === total) ?? [...candidates].sort((a, b) => b.concurrency - a.concurrency)[0];
    if (base === undefined) continue;
    rows.push({
      kind: 'many-clients',
      target: many.target,
      cell: many.cell,
      baseCell: base.cell,
      serverCpuSPer1M: many.serverCpuSPer1M,
      baseServerCpuSPer1M: base.serverCpuSPer1M,
      cpuRatio: many.serverCpuSPer1M === undefined || base.serverCpuSPer1M === undefined || base.serverCpuSPer1M === 0 ? undefined : many.serverCpuSPer1M / base.serverCpuSPer1M,
      callsPerSec: many.callsPerSec,
      baseCallsPerSec: base.callsPerSec,
    });
  }
  return rows;
}

/** renderManyClients renders compareManyClients as a table. */
export function renderManyClients(rows: readonly ManyClientsRow[]): string {
  const header = ['peer', 'many-clients cell', 'server CPU s/1M', 'calls/s', 'one-tunnel cell', 'server CPU s/1M', 'calls/s', 'CPU per call, many ÷ one'];
  const body = rows.map((row) => [
    TARGET_INFO[row.target].label,
    row.cell,
    fixed(row.serverCpuSPer1M, 2),
    fixed(row.callsPerSec, 0, true),
    row.baseCell,
    fixed(row.baseServerCpuSPer1M, 2),
    fixed(row.baseCallsPerSec, 0, true),
    times(row.cpuRatio),
  ]);
  return renderMarkdownTable(header, body, new Set([2, 3, 5, 6, 7]));
}

/** renderRunsTable lists every single measurement, in the order they ran. */
export function renderRunsTable(measurements: readonly Measurement[]): string {
  const header = ['run', 'payload', 'C', 'peer', 'calls', 'window s', 'calls/s', 'p50 µs', 'p99 µs', 'max µs', 'server CPU s', 'server RSS MiB', 'client CPU s/1M', 'errors'];
  const rows = measurements.map((m) => [
    String(m.run),
    m.payload,
    cellConcurrency(m),
    TARGET_INFO[m.target].label,
    String(m.calls),
    fixed(m.seconds, 2),
    fixed(m.callsPerSec, 0, true),
    fixed(m.p50us, 1),
    fixed(m.p99us, 1),
    fixed(m.maxUs, 0),
    fixed(m.serverCpuSeconds, 2),
    fixed(m.serverRssBytes === undefined ? undefined : m.serverRssBytes / MIB, 1),
    fixed(m.clientCpuSPer1M, 2),
    String(m.errors),
  ]);
  return renderMarkdownTable(header, rows, new Set([0, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]));
}

/** renderMarkdownTable pads a Markdown table so that it also reads well as plain text. */
export function renderMarkdownTable(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number> = new Set()): string {
  const widths = header.map((title, column) => Math.max(title.length, 3, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, column) => (rightAligned.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (rightAligned.has(column) ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** formatBytes renders 32 as "32 B", 1024 as "1 KiB", 65536 as "64 KiB". */
export function formatBytes(bytes: number): string {
  if (bytes >= MIB && bytes % MIB === 0) return `${bytes / MIB} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/** fixed renders a number with `digits` decimals (and thousands separators if asked), or "n/a". */
export function fixed(value: number | undefined, digits: number, grouped = false): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return grouped
    ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : value.toFixed(digits);
}

function times(value: number | undefined): string {
  return value === undefined ? 'n/a' : `${value.toFixed(2)}×`;
}
