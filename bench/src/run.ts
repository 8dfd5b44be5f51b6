/**
 * `pnpm bench`: tunnelrpc against @grpc/grpc-js, undici (HTTP/1.1, pipelined), a bare msgpackr socket (the
 * ceiling) and, when `go` is installed, Go net/rpc and the Go package's wire-v1 peers (Go <-> Go, Go -> Node, Node -> Go).
 * Every server runs in its own process; so does every client.
 *
 *   for run in 1..runs: for cell in cells: for peer in peers (rotated by run): measure once
 *
 * then the medians per cell and peer, the ratios tunnelrpc/peer, a table, one JSON line per cell, the idle-tunnel
 * count, and with --write-results a fresh bench/RESULTS.md. `--help` lists the options.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderChart } from './chart.js';
import { killAllChildrenNow, stopAllChildren } from './child-process.js';
import { prepareBaseline } from './baseline.js';
import { prepareGoPeer, prepareGoWirePeer } from './go-peer.js';
import { measureIdleTunnels, type IdleResult } from './idle-tunnels.js';
import { describeMachine } from './machine.js';
import { measureCell, type Measurement } from './measure-cell.js';
import { compareManyClients, fixed, formatBytes, renderManyClients, renderTable, summarize } from './report.js';
import { renderIdle, renderResultsMarkdown } from './results-markdown.js';
import { USAGE, parseRunOptions, type RunOptions } from './run-options.js';
import { GO_WIRE_TARGETS, TARGET_INFO, cellKey, type TargetName } from './targets.js';

const distDir = dirname(fileURLToPath(import.meta.url));
const benchDir = resolve(distDir, '..');

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let options: RunOptions;
  try {
    options = parseRunOptions(argv);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // With --json, stdout carries JSON lines only; everything for people goes to stderr.
  const say = (text: string): void => {
    (options.json ? process.stderr : process.stdout).write(`${text}\n`);
  };
  const progress = (text: string): void => {
    process.stderr.write(`${text}\n`);
  };

  const startedAt = new Date();
  const notes: string[] = [];
  let targets: TargetName[] = options.targets;
  let goBinary: string | undefined;
  let goStatus = 'Go net/rpc not among the targets';
  if (targets.includes('go')) {
    const go = prepareGoPeer(benchDir);
    if ('skipped' in go) {
      progress(`note: ${go.skipped}`);
      notes.push(go.skipped);
      goStatus = go.skipped;
      targets = targets.filter((target) => target !== 'go');
    } else {
      goBinary = go.binary;
      goStatus = `Go net/rpc built with ${go.version}`;
    }
  }
  let goWireBinary: string | undefined;
  if (targets.some((target) => GO_WIRE_TARGETS.includes(target))) {
    const wire = prepareGoWirePeer(benchDir);
    if ('skipped' in wire) {
      progress(`note: ${wire.skipped}`);
      notes.push(wire.skipped);
      targets = targets.filter((target) => !GO_WIRE_TARGETS.includes(target));
    } else {
      goWireBinary = wire.binary;
    }
  }
  let baselineDistDir: string | undefined;
  if (options.baseline !== undefined) {
    const baseline = prepareBaseline(benchDir, options.baseline, progress);
    if ('failed' in baseline) {
      process.stderr.write(`bench: ${baseline.failed}\n`);
      return 1;
    }
    baselineDistDir = baseline.distDir;
    notes.push(`tunnelrpc baseline: revision ${options.baseline} (commit ${baseline.commit.slice(0, 12)}), built in ${baseline.worktree}`);
  }
  if (targets.length === 0) {
    process.stderr.write('bench: no target left to run\n');
    return 1;
  }
  const machine = describeMachine(benchDir, goStatus);
  const command = describeCommand(argv);
  progress(
    `bench: ${targets.join(', ')} × ${options.cells.map(cellKey).join(', ')}; ` +
      `${options.runs} run(s) of ${options.warmup} s warm-up + ${options.seconds} s; ${machine.cores} cores, Node ${machine.node}`,
  );

  const nodeOptions: string[] = [...options.nodeFlags];
  if (options.cpuProfDir !== undefined) {
    const dir = resolve(options.cpuProfDir);
    mkdirSync(dir, { recursive: true });
    nodeOptions.push('--cpu-prof', '--cpu-prof-dir', dir);
    progress(`bench: CPU profiles of every Node server and client go to ${dir}`);
  }
  const context = { benchDir, distDir, baselineDistDir, goBinary, goWireBinary, seconds: options.seconds, warmup: options.warmup, verbose: options.verbose, nodeOptions };
  const measurements: Measurement[] = [];
  const total = options.runs * options.cells.length * targets.length;
  let done = 0;
  let failures = 0;
  for (let run = 1; run <= options.runs; run++) {
    const order = rotate(targets, run - 1);
    for (const cell of options.cells) {
      for (const target of order) {
        const label = `[${++done}/${total}] run ${run} ${cellKey(cell)} ${target}`;
        let measurement: Measurement;
        try {
          measurement = await measureCell(target, cell, run, context);
        } catch (error) {
          // One broken peer must not throw away the rest of a long run: note it, carry on, exit non-zero.
          const message = error instanceof Error ? error.message : String(error);
          progress(`${label}: FAILED: ${message}`);
          notes.push(`${TARGET_INFO[target].label} ${cellKey(cell)} run ${run} failed: ${oneLine(message)}`);
          failures++;
          continue;
        }
        measurements.push(measurement);
        progress(
          `${label}: ${fixed(measurement.callsPerSec, 0, true)} calls/s, p50 ${fixed(measurement.p50us, 1)} µs, ` +
            `p99 ${fixed(measurement.p99us, 1)} µs, server CPU ${fixed(measurement.serverCpuSPer1M, 2)} s/1M` +
            (measurement.errors > 0 ? `, ${measurement.errors} errors (${measurement.firstError ?? ''})` : ''),
        );
        if (measurement.errors > 0) {
          notes.push(`${TARGET_INFO[target].label} ${cellKey(cell)} run ${run}: ${measurement.errors} failed calls, the first: ${measurement.firstError ?? 'unknown'}`);
        }
      }
    }
  }

  let idle: IdleResult | undefined;
  if (options.idleTunnels > 0) {
    if (!targets.includes('tunnelrpc')) {
      progress('note: the idle-tunnel count needs tunnelrpc among the targets; skipped');
    } else {
      progress(`idle: opening ${options.idleTunnels} tunnels…`);
      try {
        idle = await measureIdleTunnels(options.idleTunnels, context);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        idle = { tunnels: options.idleTunnels, skipped: `failed: ${oneLine(message)}` };
        failures++;
      }
      if ('skipped' in idle) {
        progress(`note: idle tunnels skipped: ${idle.skipped}`);
        notes.push(`Idle tunnels skipped: ${idle.skipped}`);
      }
    }
  }

  const summaries = summarize(measurements, options.cells, targets);
  const manyClients = compareManyClients(summaries);
  say('');
  if (summaries.length > 0) {
    say(
      `tunnelrpc bench: medians of ${options.runs} run(s), ${options.seconds} s each; ${machine.cpu}, ${machine.cores} cores, ` +
        `Node ${machine.node}, ${machine.go}; load average ${machine.loadAverage.join(', ')} at the start`,
    );
    say('');
    say(renderTable(summaries));
  }
  if (manyClients.length > 0) {
    say('');
    say('Many clients: server CPU per call against the one-tunnel cell');
    say(renderManyClients(manyClients));
  }
  if (idle !== undefined && !('skipped' in idle)) {
    say('');
    say(`Idle tunnels (tunnelrpc server, after a full GC; opened in ${idle.openSeconds} s by ${idle.clientProcesses} client process(es)):`);
    say(renderIdle(idle));
  }
  for (const note of notes) say(`note: ${note}`);
  say('');
  const json = (value: object): void => {
    process.stdout.write(`${JSON.stringify(value)}\n`);
  };
  json({ kind: 'run', command, startedAt: startedAt.toISOString(), machine, targets, cells: options.cells, seconds: options.seconds, warmup: options.warmup, runs: options.runs });
  for (const summary of summaries) json(roundForJson({ ...summary, payloadSize: formatBytes(summary.bytes) }));
  for (const row of manyClients) json(roundForJson(row));
  if (idle !== undefined) json({ kind: 'idle', ...idle });

  if (options.writeResults) {
    const file = options.resultsFile === undefined ? join(benchDir, 'RESULTS.md') : resolve(options.resultsFile);
    const chartFile = file.replace(/(\.md)?$/i, '.svg');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(chartFile, renderChart(summaries, targets, `tunnelrpc and its peers: calls/s, medians of ${options.runs} run(s) of ${options.seconds} s`));
    const text = renderResultsMarkdown({
      command,
      startedAt,
      durationSeconds: (Date.now() - startedAt.getTime()) / 1000,
      options,
      machine,
      summaries,
      measurements,
      idle,
      notes,
      ranTargets: targets,
      manyClients,
      chartFile: basename(chartFile),
    });
    writeFileSync(file, text);
    for (const written of [file, chartFile]) {
      const shown = relative(process.cwd(), written);
      progress(`wrote ${shown.startsWith('..') ? written : shown}`);
    }
  }
  if (failures > 0) {
    process.stderr.write(`bench: ${failures} measurement(s) failed; see the notes\n`);
    return 1;
  }
  return 0;
}

// The command as the user would retype it: `pnpm bench …` when run through the root script.
function describeCommand(argv: readonly string[]): string {
  const args = argv.filter((arg) => arg !== '--').map(shellQuote).join(' ');
  const viaScript = process.env['npm_lifecycle_event'] === 'bench';
  const base = viaScript ? 'npx -y pnpm@12.21.0 bench' : 'npx tsc -b && node bench/dist/run.js';
  return args === '' ? base : `${base} ${args}`;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

// A child's failure message ends with its stderr tail; a note keeps the first line and the first error line.
function oneLine(message: string): string {
  const lines = message.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const cause = lines.slice(1).find((line) => /error/i.test(line));
  return [lines[0] ?? '', cause].filter((part) => part !== undefined).join(' ').slice(0, 400);
}

// Medians and ratios are floats; four significant decimals are plenty for a JSON consumer.
function roundForJson(value: object): object {
  return JSON.parse(JSON.stringify(value, (_key, item: unknown) => (typeof item === 'number' && !Number.isInteger(item) ? Number(item.toFixed(4)) : item))) as object;
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

process.on('exit', killAllChildrenNow);
process.on('SIGINT', () => {
  stopAllChildren().finally(() => process.exit(130));
});

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
    await stopAllChildren();
    process.exitCode = 1;
  },
);
