/**
 * bench/RESULTS.md, rendered whole from one run (--write-results). It is never edited by hand: rerun instead.
 */
import type { IdleResult } from './idle-tunnels.js';
import type { MachineInfo } from './machine.js';
import type { Measurement } from './measure-cell.js';
import { describePayload } from './payload.js';
import { renderManyClients, renderMarkdownTable, renderRunsTable, renderTable, type CellSummary, type ManyClientsRow } from './report.js';
import type { RunOptions } from './run-options.js';
import { TARGET_INFO, cellKey, type TargetName } from './targets.js';

/** ResultsReport is everything RESULTS.md shows. */
export interface ResultsReport {
  command: string;
  startedAt: Date;
  durationSeconds: number;
  options: RunOptions;
  machine: MachineInfo;
  summaries: CellSummary[];
  measurements: Measurement[];
  idle: IdleResult | undefined;
  notes: string[];
  ranTargets: TargetName[];
  manyClients: ManyClientsRow[];
  /** The chart's file name, beside RESULTS.md. */
  chartFile: string;
}

const MIB = 1024 * 1024;

/** renderResultsMarkdown returns the full text of RESULTS.md. */
export function renderResultsMarkdown(report: ResultsReport): string {
  const { options, machine } = report;
  const raisedInFlight = [...new Set(options.cells.map((cell) => cell.concurrency).filter((c) => c > 128))];
  const raisedPending = [...new Set(options.cells.map((cell) => cell.concurrency).filter((c) => c > 1024))];
  const out: string[] = [];
  out.push('# tunnelrpc benchmark results', '');
  out.push(
    `Written by \`bench/src/run.ts\` from the run below, started ${report.startedAt.toISOString()} and lasting ` +
      `${Math.round(report.durationSeconds)} s. Do not edit by hand: rerun the command to replace it.`,
    '',
  );
  out.push('## Command', '', '```sh', `cd "$(git rev-parse --show-toplevel)" && ${report.command}`, '```', '');

  out.push('## Machine', '');
  out.push(`- ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}`);
  out.push(
    `- Node ${machine.node}; tunnelrpc ${machine.versions['tunnelrpc']}, @grpc/grpc-js ${machine.versions['@grpc/grpc-js']}, ` +
      `undici ${machine.versions['undici']}, msgpackr ${machine.versions['msgpackr']}; ${machine.go}`,
  );
  out.push(
    `- Client and server share these cores with each other and with anything else running at the time (load average ` +
      `${machine.loadAverage.join(', ')} when the run started).`,
    '',
  );

  out.push('## Setup', '');
  out.push(
    '- Every peer: one connection (P × T in a many-clients cell), a closed loop of C calls outstanding on each, each call echoing ' +
      'the payload (the client checks what comes back: the byte length, the string length, or the 20 records). Client and ' +
      'server each run in their own process, both started afresh for every measurement.',
    `- Each measurement: ${options.warmup} s of warm-up (not counted), then a ${options.seconds} s window. calls/s is the calls ` +
      'answered in the window over its length. Latency is from issuing a call to its settling, on the client, recorded in a ' +
      'log-linear histogram (error under 1.6 %).',
    '- Server CPU is user + system time of the server process over the window (from /proc/<pid>/stat), per million calls. ' +
      'Server RSS is its VmRSS when the window closes.',
    `- ${options.runs} run${options.runs === 1 ? '' : 's'}, interleaved: each run goes through every cell and, within a cell, every ` +
      'peer (the peer order rotates from run to run). The table shows the median of each metric over the runs, taken separately.',
    '- Ratios are tunnelrpc ÷ peer on the same cell: calls/s above 1× means tunnelrpc is faster; p99 and CPU below 1× mean ' +
      'tunnelrpc is better.',
    `- Payloads: ${options.cells
      .map((cell) => `${cell.payload} = ${describePayload(cell.payload)}`)
      .filter((text, index, all) => all.indexOf(text) === index)
      .join(', ')}. Bytes are fixed pseudo-random bytes; strings are \`{a: 1, b: <string>}\` of pseudo-random ` +
      'letters; the object is `{items: [20 records]}`, each with numbers, a string, a boolean, a list of strings, a ' +
      'nested map and a timestamp (bench/src/payload.ts). The sizes of strings and the object are those of the value ' +
      'on a MessagePack wire.',
    ...(options.cells.some((cell) => cell.tunnels > 1 || cell.processes > 1)
      ? [
          `- Many-clients cells (${options.cells
            .filter((cell) => cell.tunnels > 1 || cell.processes > 1)
            .map(cellKey)
            .join(', ')}): P client processes each open T connections with C calls outstanding on each, all into one ` +
            'server; calls/s is their sum, latency their merged histograms, client CPU their sum.',
        ]
      : []),
    '',
  );

  out.push('## Results', '', `![calls/s per cell and peer, log scale](${report.chartFile})`, '', renderTable(report.summaries), '');
  if (report.manyClients.length > 0) {
    out.push(
      '### Many clients',
      '',
      'Server CPU per call with many client processes and tunnels, against the one-tunnel cell of the same payload and ' +
        'total concurrency. Above 1×: the spread-out load costs the server more per call.',
      '',
      renderManyClients(report.manyClients),
      '',
    );
  }

  if (report.idle !== undefined) {
    out.push('## Idle tunnels', '');
    const idle = report.idle;
    if ('skipped' in idle) {
      out.push(`${idle.tunnels} idle tunnels: skipped (${idle.skipped}).`, '');
    } else {
      out.push(renderIdle(idle), '');
      out.push(
        `Opened with the public connect() from ${idle.clientProcesses} client process${idle.clientProcesses === 1 ? '' : 'es'} ` +
          `in ${idle.openSeconds} s; descriptors: ${idle.fdLimit}. Both readings are taken after a full GC (node --expose-gc), the ` +
          'baseline after one warm-up tunnel and call has come and gone.',
        '',
      );
    }
  }

  out.push('## How each peer carries the payload', '');
  out.push(...report.ranTargets.map((target) => `- **${TARGET_INFO[target].label}**: ${TARGET_INFO[target].wire}.`), '');

  out.push('## tunnelrpc options', '');
  out.push(
    'The real public API with every guard at its default: 8 MiB maxFrameSize, maxDepth 32, maxItemsPerFrame 262144, zod ' +
      'validation of params (z.unknown()), a 30 s deadline and timer on every call, idleTimeout, frameTimeout and the write ' +
      'buffer bounds. Only limits the run itself would exceed are raised, and only to what it needs:',
  );
  out.push(
    `- server maxInFlight (default 128): ${raisedInFlight.length === 0 ? 'default in every cell' : raisedInFlight.map((c) => `${c} in the C=${c} cell`).join(', ')}`,
    `- client maxPendingCalls (default 1024): ${raisedPending.length === 0 ? 'default in every cell' : raisedPending.map((c) => `${c} in the C=${c} cell`).join(', ')}`,
    `- server maxConnections (default 10000): ${options.idleTunnels > 10_000 ? `${options.idleTunnels} for the idle-tunnel count` : 'default'}`,
    '',
  );

  if (report.notes.length > 0) {
    out.push('## Notes', '', ...report.notes.map((note) => `- ${note}`), '');
  }

  out.push('## Every measurement', '', renderRunsTable(report.measurements), '');
  return `${out.join('\n')}`;
}

/** renderIdle renders the idle-tunnel readings as a small table. */
export function renderIdle(idle: Exclude<IdleResult, { skipped: string }>): string {
  const mib = (bytes: number): string => (bytes / MIB).toFixed(1);
  const kib = (bytes: number): string => (bytes / 1024).toFixed(1);
  return renderMarkdownTable(
    ['tunnels', 'server RSS idle MiB', `server RSS with tunnels MiB`, 'RSS per tunnel KiB', 'heap idle MiB', 'heap with tunnels MiB', 'heap per tunnel KiB'],
    [[String(idle.tunnels), mib(idle.baselineRssBytes), mib(idle.rssBytes), kib(idle.rssPerTunnelBytes), mib(idle.baselineHeapBytes), mib(idle.heapBytes), kib(idle.heapPerTunnelBytes)]],
    new Set([0, 1, 2, 3, 4, 5, 6]),
  );
}
