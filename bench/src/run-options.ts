/**
 * The orchestrator's command line: parsing, defaults, validation and --help.
 */
import { PAYLOAD_NAMES, isPayloadName, payloadBytes } from './payload.js';
import { TARGET_NAMES, isTargetName, type CellSpec, type TargetName } from './targets.js';

/** RunOptions is the parsed command line of `pnpm bench`. */
export interface RunOptions {
  targets: TargetName[];
  cells: CellSpec[];
  seconds: number;
  warmup: number;
  runs: number;
  idleTunnels: number;
  json: boolean;
  writeResults: boolean;
  resultsFile: string | undefined;
  verbose: boolean;
  /** A git revision to build in a temporary worktree and run as the `baseline` target, or undefined. */
  baseline: string | undefined;
  /** Where Node children write --cpu-prof profiles, or undefined for no profiling. */
  cpuProfDir: string | undefined;
  /** Extra Node or V8 flags for every Node server and client, e.g. ['--max-semi-space-size=4']. */
  nodeFlags: string[];
  help: boolean;
}

/**
 * DEFAULT_CELLS is the matrix: bytes and strings of 32 B at C=1, 16 and 256, of 1 KiB and 64 KiB at C=16; the
 * object at C=16; and the many-clients cell, 4 client processes × 16 tunnels × C=4 (256 outstanding in all).
 */
export const DEFAULT_CELLS = 'small:1,small:16,small:256,1k:16,64k:16,str32:1,str32:16,str32:256,str1k:16,str64k:16,object:16,small:4:16x4';

/** USAGE is the --help text. */
export const USAGE = `Usage: pnpm bench [options]        (or: node bench/dist/run.js [options] after tsc -b)

Runs tunnelrpc and its peers, each server in its own process, one connection, a closed loop of C calls
echoing the payload, and prints calls/s, p50/p99 latency, server CPU s per 1M calls, server RSS and the
ratios tunnelrpc/peer (medians of the interleaved runs), then one JSON line per cell.

  --target LIST        peers, from ${TARGET_NAMES.join(',')} (default: all; the Go peers only if \`go\` is installed)
  --concurrency LIST   outstanding calls, e.g. 1,16,256      } given either, the cells are the cross product
  --payload LIST       payloads (below)                      } (payload default small, concurrency 16)
  --cells LIST         explicit cells as payload:C, e.g. small:1,64k:16, or payload:C:TxP for P client
                       processes of T tunnels with C calls outstanding on each, e.g. small:4:16x4
                       (default: ${DEFAULT_CELLS})
  --baseline REV       also run tunnelrpc as built from git revision REV (a tag, a commit, HEAD~3), in a
                       temporary worktree, interleaved with the working tree: the table's "÷ tunnelrpc
                       baseline" column is the same-run ratio, and each side's server and client CPU per call
                       is printed. Run it against the previous release before any claim about speed.
  --seconds S          measured window of each run (default 5)
  --warmup S           warm-up before each window, not measured (default 1)
  --runs N             interleaved runs; the table shows medians (default 3; 0 runs only the idle count)
  --idle-tunnels N     also open N idle tunnels and report server RSS over the idle baseline (default 10000;
                       0 skips; needs tunnelrpc among the targets)
  --json               print only JSON lines on stdout (the table and progress go to stderr)
  --write-results      rewrite bench/RESULTS.md from this run (with the exact command)
  --results-file PATH  write the results there instead of bench/RESULTS.md (implies --write-results)
  --cpu-prof-dir DIR   run every Node server and client with --cpu-prof, writing the profiles into DIR
                       (summarize them with: node bench/dist/profile-summary.js DIR)
  --node-flags "F ..." Node or V8 flags for every Node server and client, every peer alike, to measure how
                       the runtime's settings move the results (e.g. "--max-semi-space-size=4"; bench/PROFILE.md)
  --verbose            pass the children's stderr through
  --help               this text

Payloads: small, 1k, 64k: bytes of 32 B, 1 KiB, 64 KiB; str32, str1k, str64k: {a: 1, b: <string of 32, 1024,
65536 characters>}; object: {items: [20 records]} each a map with a nested map, a list, strings, numbers and a timestamp (2.3 KiB).
With --write-results, the chart (calls/s per cell and peer, log scale) is written next to the results file, as
.svg.
`;

/** parseRunOptions turns argv into RunOptions, throwing an Error that says which argument is wrong. */
export function parseRunOptions(argv: readonly string[]): RunOptions {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const FLAGS = new Set(['json', 'write-results', 'verbose', 'help']);
  const VALUED = new Set(['target', 'concurrency', 'payload', 'cells', 'seconds', 'warmup', 'runs', 'idle-tunnels', 'results-file', 'cpu-prof-dir', 'baseline', 'node-flags']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') continue; // pnpm passes it through before user arguments on some versions
    if (arg === '-h') {
      flags.add('help');
      continue;
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(arg)}; see --help`);
    const [name, inline] = splitOnce(arg.slice(2), '=');
    if (FLAGS.has(name)) {
      if (inline !== undefined) throw new Error(`--${name} takes no value`);
      flags.add(name);
    } else if (VALUED.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value; see --help`);
      values.set(name, value);
    } else {
      throw new Error(`unknown option --${name}; see --help`);
    }
  }

  const list = (name: string): string[] | undefined =>
    values.get(name)?.split(',').map((item) => item.trim()).filter((item) => item !== '');
  const number = (name: string, fallback: number, min: number, integer: boolean): number => {
    const raw = values.get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
      throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} of at least ${min}; got ${JSON.stringify(raw)}`);
    }
    return value;
  };

  const baseline = values.get('baseline');
  // The baseline runs when a revision is given, and only then.
  const targetNames = (list('target') ?? [...TARGET_NAMES]).filter((name) => name !== 'baseline');
  if (baseline !== undefined) targetNames.push('baseline');
  for (const name of targetNames) {
    if (!isTargetName(name)) throw new Error(`--target ${JSON.stringify(name)} is not one of ${TARGET_NAMES.join(', ')}`);
  }
  const targets = TARGET_NAMES.filter((name) => targetNames.includes(name));

  const concurrencyOf = (raw: string, option: string): number => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > 65_536) throw new Error(`${option} ${JSON.stringify(raw)} must be an integer from 1 to 65536`);
    return value;
  };
  const cell = (payload: string, concurrency: number, option: string, tunnels = 1, processes = 1): CellSpec => {
    if (!isPayloadName(payload)) throw new Error(`${option}: ${JSON.stringify(payload)} is not a payload; use ${PAYLOAD_NAMES.join(', ')}`);
    return { payload, bytes: payloadBytes(payload), concurrency, tunnels, processes };
  };
  const parseCell = (item: string, option: string): CellSpec => {
    const [payload, concurrency, spread, extra] = item.split(':');
    if (payload === undefined || concurrency === undefined || extra !== undefined) {
      throw new Error(`${option} item ${JSON.stringify(item)} must be payload:C or payload:C:TxP, like small:16 or small:4:16x4`);
    }
    if (spread === undefined) return cell(payload, concurrencyOf(concurrency, option), option);
    const match = /^(\d+)x(\d+)$/.exec(spread);
    const tunnels = Number(match?.[1]);
    const processes = Number(match?.[2]);
    if (match === null || tunnels < 1 || tunnels > 1000 || processes < 1 || processes > 64) {
      throw new Error(`${option} item ${JSON.stringify(item)}: TxP must be tunnels (1-1000) x processes (1-64), like 16x4`);
    }
    return cell(payload, concurrencyOf(concurrency, option), option, tunnels, processes);
  };
  let cells: CellSpec[];
  const explicit = list('cells');
  const payloads = list('payload');
  const concurrencies = list('concurrency');
  if (explicit !== undefined) {
    if (payloads !== undefined || concurrencies !== undefined) throw new Error('--cells cannot be combined with --payload or --concurrency');
    cells = explicit.map((item) => parseCell(item, '--cells'));
  } else if (payloads !== undefined || concurrencies !== undefined) {
    const cs = (concurrencies ?? ['16']).map((raw) => concurrencyOf(raw, '--concurrency'));
    cells = (payloads ?? ['small']).flatMap((payload) => cs.map((c) => cell(payload, c, '--payload')));
  } else {
    cells = DEFAULT_CELLS.split(',').map((item) => parseCell(item, 'default'));
  }
  if (cells.length === 0) throw new Error('no cells to run');
  if (targets.length === 0) throw new Error('no targets to run');

  const resultsFile = values.get('results-file');
  return {
    targets,
    cells,
    seconds: number('seconds', 5, 0.1, false),
    warmup: number('warmup', 1, 0, false),
    runs: number('runs', 3, 0, true),
    idleTunnels: number('idle-tunnels', 10_000, 0, true),
    json: flags.has('json'),
    writeResults: flags.has('write-results') || resultsFile !== undefined,
    resultsFile,
    verbose: flags.has('verbose'),
    cpuProfDir: values.get('cpu-prof-dir'),
    nodeFlags: nodeFlags(values.get('node-flags')),
    baseline,
    help: flags.has('help'),
  };
}

function nodeFlags(text: string | undefined): string[] {
  const flags = (text ?? '').split(/\s+/).filter((flag) => flag !== '');
  const bad = flags.find((flag) => !flag.startsWith('--'));
  if (bad !== undefined) throw new Error(`--node-flags takes flags that start with --; got ${JSON.stringify(bad)}`);
  return flags;
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at === -1 ? [text, undefined] : [text.slice(0, at), text.slice(at + separator.length)];
}
