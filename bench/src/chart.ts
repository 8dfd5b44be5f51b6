/**
 * The chart of a run: calls/s per cell and peer as grouped bars on a log scale, an SVG written next to RESULTS.md
 * from the same summaries as its table. Plain SVG 1.1 text, no script, no external font or style: it renders the
 * same on GitHub, in a browser and in an image viewer.
 */
import type { CellSummary } from './report.js';
import { TARGET_INFO, type TargetName } from './targets.js';

/** PEER_COLORS gives every peer one color, the same in every chart (tunnelrpc stands out, the ceiling is grey). */
const PEER_COLORS: Readonly<Record<TargetName, string>> = {
  tunnelrpc: '#d6452b',
  baseline: '#f0a58f',
  grpc: '#3b6fb6',
  undici: '#4e9a4b',
  ceiling: '#8a8a8a',
  go: '#00a6c0',
  'go-wire': '#7b4fb0',
  'go-to-node': '#c28a1e',
  'node-to-go': '#b0477b',
};

const BAR = 13;
const GROUP_GAP = 22;
const LEFT = 78;
const TOP = 64;
const PLOT_HEIGHT = 300;
const BOTTOM = 86;
const RIGHT = 20;
const MIN_WIDTH = 820;

/** renderChart returns the SVG text of the chart for `summaries` (one bar per cell and peer that ran). */
export function renderChart(summaries: readonly CellSummary[], targets: readonly TargetName[], title: string): string {
  const cells = [...new Map(summaries.map((s) => [s.cell, s])).values()];
  const values = summaries.map((s) => s.callsPerSec).filter((v): v is number => v !== undefined && v > 0);
  const low = 10 ** Math.floor(Math.log10(Math.min(...values, 1e6)));
  const high = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const decades = Math.max(1, Math.round(Math.log10(high / low)));
  const groupWidth = targets.length * BAR + GROUP_GAP;
  const width = Math.max(MIN_WIDTH, LEFT + cells.length * groupWidth + RIGHT);
  const height = TOP + PLOT_HEIGHT + BOTTOM;
  const y = (value: number): number => TOP + PLOT_HEIGHT - (Math.log10(value / low) / decades) * PLOT_HEIGHT;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<title>${escape(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
  );
  // Legend.
  let legendX = LEFT;
  for (const target of targets) {
    const label = TARGET_INFO[target].label;
    out.push(
      `<rect x="${legendX}" y="32" width="11" height="11" fill="${PEER_COLORS[target]}"/>`,
      `<text x="${legendX + 15}" y="42">${escape(label)}</text>`,
    );
    legendX += 24 + label.length * 6.2;
  }
  // Axis and grid: one line per decade, faint lines at 2× and 5×.
  for (let d = 0; d <= decades; d++) {
    const value = low * 10 ** d;
    const at = y(value);
    out.push(
      `<line x1="${LEFT}" x2="${width - RIGHT}" y1="${at.toFixed(1)}" y2="${at.toFixed(1)}" stroke="#c8c8c8"/>`,
      `<text x="${LEFT - 6}" y="${(at + 4).toFixed(1)}" text-anchor="end">${formatCount(value)}</text>`,
    );
    if (d < decades) {
      for (const factor of [2, 5]) {
        const minor = y(value * factor);
        out.push(`<line x1="${LEFT}" x2="${width - RIGHT}" y1="${minor.toFixed(1)}" y2="${minor.toFixed(1)}" stroke="#ececec"/>`);
      }
    }
  }
  out.push(
    `<text transform="translate(16 ${TOP + PLOT_HEIGHT / 2}) rotate(-90)" text-anchor="middle">calls/s (log scale)</text>`,
    `<line x1="${LEFT}" x2="${LEFT}" y1="${TOP}" y2="${TOP + PLOT_HEIGHT}" stroke="#555555"/>`,
  );
  // Bars, one group per cell, with the value in each bar's tooltip.
  cells.forEach((cell, index) => {
    const groupX = LEFT + GROUP_GAP / 2 + index * groupWidth;
    targets.forEach((target, slot) => {
      const summary = summaries.find((s) => s.cell === cell.cell && s.target === target);
      const value = summary?.callsPerSec;
      const x = groupX + slot * BAR;
      if (value === undefined || !(value > 0)) {
        out.push(`<text x="${(x + BAR / 2).toFixed(1)}" y="${TOP + PLOT_HEIGHT - 4}" text-anchor="middle" font-size="8" fill="#999999">–</text>`);
        return;
      }
      const top = y(value);
      out.push(
        `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${BAR - 2}" height="${(TOP + PLOT_HEIGHT - top).toFixed(1)}" fill="${PEER_COLORS[target]}">` +
          `<title>${escape(`${TARGET_INFO[target].label}, ${cell.cell}: ${Math.round(value).toLocaleString('en-US')} calls/s`)}</title></rect>`,
      );
    });
    const center = groupX + (targets.length * BAR) / 2;
    const [first, second] = cellLabel(cell);
    out.push(
      `<text x="${center.toFixed(1)}" y="${TOP + PLOT_HEIGHT + 16}" text-anchor="middle">${escape(first)}</text>`,
      `<text x="${center.toFixed(1)}" y="${TOP + PLOT_HEIGHT + 30}" text-anchor="middle" fill="#555555">${escape(second)}</text>`,
    );
  });
  out.push(
    `<text x="${LEFT}" y="${height - 26}" fill="#555555">Each bar: the median calls/s of the run's measurements; a dash: the peer did not run that cell.</text>`,
    `<text x="${LEFT}" y="${height - 11}" fill="#555555">Under each group: the payload, then C (calls outstanding), or C per tunnel × tunnels × client processes.</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}

// Two short lines under a group: the payload, then the load.
function cellLabel(cell: CellSummary): [string, string] {
  if (cell.tunnels === 1 && cell.processes === 1) return [cell.payload, `C=${cell.concurrency}`];
  return [cell.payload, `${cell.concurrency}×${cell.tunnels}×${cell.processes}`];
}

function formatCount(value: number): string {
  if (value >= 1e6) return `${value / 1e6}M`;
  if (value >= 1e3) return `${value / 1e3}k`;
  return String(value);
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
