/**
 * `pnpm bench:picker`: what the pool's per-call routing costs, in ns per call, with 1 and 8 endpoints of 1 and 4
 * tunnels each. Plain objects play the tunnels and endpoints, so the figure is the routing alone, not a write.
 *
 *   picker   what the pool does now per call: hasAccepting (the picker's open count), pick (two drawn from the
 *            candidates gathered at the last state change), and the load read for admission (a counter)
 *   walk     what it did before, for comparison: hasAccepting walking the endpoints, the candidate lists built per
 *            call, then the two-choice draw, and the load summed over every tunnel
 *
 * Each cell runs `--calls` calls (default 2000000) per round, `--runs` rounds (default 5), alternated; the median
 * ns per call is reported with every sample, as one JSON object.
 */
import { parseArgs } from 'node:util';
import { Picker, type PickerEndpoint, type PickerTunnel } from '../../packages/client/dist/picker.js';
import { drawTwo } from '../../packages/client/dist/balancer.js';

// The bench never changes a tunnel after making it: the picker's read-only views are its types.
type FakeTunnel = PickerTunnel;
type FakeEndpoint = PickerEndpoint<PickerTunnel>;

const MAX_WRITE_BUFFER = 1 << 20;

function fleet(endpoints: number, tunnels: number): FakeEndpoint[] {
  return Array.from({ length: endpoints }, (_, e) => ({
    open: Array.from({ length: tunnels }, (_, t) => ({ accepting: true, unsentBytes: 0, load: (e * 7 + t * 3) % 5 })),
    outlier: false,
    latencyCost: () => 0,
  }));
}

// The previous per-call routing, kept here only as the reference the picker is measured against.
function walkRoute(endpoints: readonly FakeEndpoint[], tunnels: FakeTunnel[], random: () => number): number {
  let accepting = false;
  for (const endpoint of endpoints) if (endpoint.open.length > 0) accepting = true;
  if (!accepting) return -1;
  let load = 0;
  for (const endpoint of endpoints) for (const tunnel of endpoint.open) load += tunnel.load;
  let only: FakeTunnel | undefined;
  for (const endpoint of endpoints) {
    for (const open of endpoint.open) {
      if (!open.accepting || open.unsentBytes > MAX_WRITE_BUFFER) continue;
      if (only === undefined) {
        only = open;
        continue;
      }
      if (tunnels.length === 0) tunnels.push(only);
      tunnels.push(open);
    }
  }
  if (only === undefined) return -1;
  let picked = only;
  if (tunnels.length > 0) {
    const pair = drawTwo(tunnels.length, random);
    picked = tunnels[pair[1]]!.load < tunnels[pair[0]]!.load ? tunnels[pair[1]]! : tunnels[pair[0]]!;
    tunnels.length = 0;
  }
  return picked.load + load;
}

function timeWalk(endpoints: readonly FakeEndpoint[], calls: number): number {
  const scratch: FakeTunnel[] = [];
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) sink += walkRoute(endpoints, scratch, Math.random);
  const ns = Number(process.hrtime.bigint() - start) / calls;
  if (sink === -Infinity) console.error(sink);
  return ns;
}

function timePicker(endpoints: readonly FakeEndpoint[], calls: number): number {
  const picker = new Picker<FakeTunnel, FakeEndpoint>(() => endpoints, { maxWriteBuffer: MAX_WRITE_BUFFER, latencyAware: false }, Math.random);
  const loadCounter = { ids: 0 };
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    if (picker.openCount === 0) continue;
    const tunnel = picker.pick();
    if (tunnel !== undefined) sink += tunnel.load + loadCounter.ids;
  }
  const ns = Number(process.hrtime.bigint() - start) / calls;
  if (sink === -Infinity) console.error(sink);
  return ns;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '2000000' },
    runs: { type: 'string', default: '5' },
  },
});
const calls = Number(values.calls);
const runs = Number(values.runs);
const cells: unknown[] = [];
for (const [endpoints, tunnels] of [[1, 1], [1, 4], [8, 1], [8, 4]] as const) {
  const list = fleet(endpoints, tunnels);
  const samples = { picker: [] as number[], walk: [] as number[] };
  // One unmeasured round each, so that both are optimised before the samples.
  timePicker(list, calls);
  timeWalk(list, calls);
  for (let run = 0; run < runs; run++) {
    samples.picker.push(Number(timePicker(list, calls).toFixed(1)));
    samples.walk.push(Number(timeWalk(list, calls).toFixed(1)));
  }
  cells.push({ endpoints, tunnelsPerEndpoint: tunnels, pickerNsPerCall: median(samples.picker), walkNsPerCall: median(samples.walk), samples });
}
console.log(JSON.stringify({ calls, runs, node: process.version, cells }, null, 2));
