/**
 * `node bench/dist/msgpackr-extract.js`: what msgpackr's optional native addon (msgpackr-extract, the install
 * script npm 11 blocks by default) changes for tunnelrpc. It decodes response messages of each bench payload with
 * the protocol's own decodeMessage, in two child processes: one with the addon, one with
 * MSGPACKR_NATIVE_ACCELERATION_DISABLED=true (what a blocked install script amounts to: msgpackr falls back to its
 * JavaScript string reader). Rounds alternate between the two; it prints the median ns per decode, one JSON line
 * per payload, and the ratio. Times are CPU time (user + system) per decode.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isNativeAccelerationEnabled } from 'msgpackr';
import { decodeMessage, encodeMessage } from '@tunnelrpc/protocol/internal';
import { PAYLOAD_NAMES, createPayload, type PayloadName } from './payload.js';

const ROUNDS = 7;
const WINDOW_MS = 300;

// Child: decode each payload for WINDOW_MS and print ns per decode as JSON.
function measure(): void {
  const result: Record<string, number> = {};
  for (const name of PAYLOAD_NAMES) {
    const frame = encodeMessage({ type: 1, id: 1, result: createPayload(name) }).subarray(4);
    for (let i = 0; i < 200; i++) decodeMessage(frame); // warm-up
    // CPU time, not wall time: on a shared machine the wall clock also counts the time other processes ran.
    let count = 0;
    const started = process.cpuUsage();
    let spent = 0;
    while (spent < WINDOW_MS * 1000) {
      for (let i = 0; i < 50; i++) decodeMessage(frame);
      count += 50;
      const used = process.cpuUsage(started);
      spent = used.user + used.system;
    }
    result[name] = (spent * 1000) / count;
  }
  process.stdout.write(JSON.stringify({ native: isNativeAccelerationEnabled, result }));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function main(): void {
  const self = fileURLToPath(import.meta.url);
  const samples = { native: new Map<PayloadName, number[]>(), js: new Map<PayloadName, number[]>() };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 === 0 ? (['native', 'js'] as const) : (['js', 'native'] as const)) {
      const env = { ...process.env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: mode === 'js' ? 'true' : 'false' };
      const child = spawnSync(process.execPath, [self, '--child'], { env, encoding: 'utf8' });
      if (child.status !== 0) throw new Error(`the ${mode} child failed: ${child.stderr}`);
      const { native, result } = JSON.parse(child.stdout) as { native: boolean; result: Record<PayloadName, number> };
      // Without the addon installed both children would measure the same JavaScript reader.
      if (native !== (mode === 'native')) throw new Error(`the ${mode} child ran with native acceleration ${native ? 'on' : 'off'}; is msgpackr-extract installed (allowBuilds)?`);
      for (const name of PAYLOAD_NAMES) samples[mode].set(name, [...(samples[mode].get(name) ?? []), result[name]]);
    }
  }
  for (const name of PAYLOAD_NAMES) {
    const native = median(samples.native.get(name)!);
    const js = median(samples.js.get(name)!);
    process.stdout.write(`${JSON.stringify({ payload: name, nativeNsPerDecode: Math.round(native), jsNsPerDecode: Math.round(js), jsOverNative: Math.round((js / native) * 100) / 100 })}\n`);
  }
}

if (process.argv.includes('--child')) measure();
else main();
