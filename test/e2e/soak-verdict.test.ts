/**
 * The soak's memory verdict, judged on itself: the pure fit on made-up samples, then two short soaks against the
 * real server, one with an injected leak of 64 bytes per call (caught) and one without (passes). The verdict is
 * about memory slope only; nothing here depends on how fast the machine is.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { LEAK_LIMIT_MIB_PER_MILLION_CALLS, judgeMemory, slope, type MemorySample } from '../scripts/memory-verdict.js';

const SOAK = fileURLToPath(new URL('../scripts/soak.js', import.meta.url));
const MiB = 1024 * 1024;

interface SoakReport {
  ok: boolean;
  lost: number;
  doubled: number;
  wrong: number;
  unmapped: number;
  memory: {
    leak: boolean;
    limitMiBPerMillionCalls: number;
    slopeMiBPerMillionCalls: { rss: number; heapUsed: number; external: number; arrayBuffers: number; retained: number };
    samples: number;
    leakedBuffers: number;
  };
}

/** runSoak runs the soak script with `args` and returns its report (it exits 1 on a failed verdict). */
function runSoak(args: string[]): Promise<SoakReport> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [SOAK, ...args], { maxBuffer: 16 * MiB }, (error, stdout, stderr) => {
      const at = stdout.indexOf('{');
      if (at === -1) {
        reject(new Error(`the soak printed no report (${error?.message ?? 'no error'}): ${stderr.slice(-2000)}`));
        return;
      }
      resolve(JSON.parse(stdout.slice(at)) as SoakReport);
    });
  });
}

function samplesOf(bytesPerCall: number, noise: (i: number) => number): MemorySample[] {
  return Array.from({ length: 40 }, (_, i) => {
    const calls = (i + 1) * 25_000;
    const retained = 20 * MiB + calls * bytesPerCall + noise(i);
    return { calls, rss: 80 * MiB + noise(i) * 8, heapUsed: retained - 2 * MiB, external: 2 * MiB, arrayBuffers: MiB };
  });
}

describe('soak memory verdict', () => {
  describe('judgeMemory', () => {
    it('fits a least-squares slope', () => {
      expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).to.equal(2);
      expect(slope([0, 1, 2, 3], [0, 1, 0, 1])).to.be.closeTo(0.2, 1e-12);
      expect(() => slope([1, 1], [0, 1])).to.throw(/more than one x/);
    });

    it('calls a retained slope of one small buffer per call a leak', () => {
      const verdict = judgeMemory(samplesOf(100, () => 0));
      expect(verdict.leak).to.equal(true);
      expect(verdict.slopeMiBPerMillionCalls.retained).to.be.closeTo((100 * 1e6) / MiB, 0.01);
    });

    it('passes steps and jitter that do not grow with the calls, however large in RSS', () => {
      // A 1 MiB step halfway, ±0.5 MiB of alternating jitter, and RSS moving eight times as much.
      const verdict = judgeMemory(samplesOf(0, (i) => (i >= 20 ? MiB : 0) + (i % 2 === 0 ? 0.5 : -0.5) * MiB));
      expect(verdict.leak).to.equal(false);
      expect(verdict.slopeMiBPerMillionCalls.retained).to.be.below(LEAK_LIMIT_MIB_PER_MILLION_CALLS);
    });

    it('leaves the warm-up share out of the fit and needs enough samples', () => {
      const samples = samplesOf(0, () => 0);
      samples[0]!.heapUsed += 50 * MiB; // a first reading far above the rest: warm-up, not a trend
      expect(judgeMemory(samples).leak).to.equal(false);
      expect(() => judgeMemory(samples.slice(0, 3))).to.throw(/needs 5 samples/);
    });
  });

  describe('pnpm soak on the real server', function () {
    // Two soaks of 200,000 calls each; the bound is generous for a loaded machine, the assertions are about memory.
    this.timeout(240_000);
    const common = ['--calls', '200000', '--warmup', '20000', '--samples', '40', '--seed', '13'];

    it('catches a leak of 64 bytes per call', async () => {
      const report = await runSoak([...common, '--inject-leak', '64']);
      expect(report.memory.leakedBuffers).to.be.above(100_000);
      expect(report.memory.leak, JSON.stringify(report.memory)).to.equal(true);
      expect(report.ok).to.equal(false);
      expect([report.lost, report.doubled, report.wrong, report.unmapped]).to.deep.equal([0, 0, 0, 0]);
    });

    it('passes the real server without one', async () => {
      const report = await runSoak(common);
      expect(report.memory.leakedBuffers).to.equal(0);
      expect(report.memory.leak, JSON.stringify(report.memory)).to.equal(false);
      expect(report.ok, JSON.stringify(report)).to.equal(true);
    });
  });
});
