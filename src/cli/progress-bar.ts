/**
 * The transfer progress `inbm apply --wait` shows on stderr while an update downloads: a bar
 * redrawn in place on a terminal; in a log (not a TTY) one line per tenth of the transfer, so a
 * CI log or `journalctl` is not flooded.
 */
import type { ProgressRecord } from '../status/progress.js';

interface Out {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

const WIDTH = 24;

const mib = (n: number) => `${(n / 1024 ** 2).toFixed(1)} MiB`;

/** One line: what, how far, how fast. */
export function progressLine(p: ProgressRecord, width = WIDTH): string {
  const speed = `${mib(p.rate)}/s`;
  if (p.total === undefined || p.total <= 0) return `${p.key} ${p.step}: ${mib(p.bytes)} ${speed}`;
  const frac = Math.min(1, p.bytes / p.total);
  const filled = Math.round(frac * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  return `${p.key} ${p.step} ${bar} ${Math.floor(frac * 100)}% ${mib(p.bytes)} of ${mib(p.total)} ${speed}`;
}

export function progressBar(out: Out): { show: (p: ProgressRecord) => void; end: () => void } {
  let drawn = false;
  let lastTenth = -1;
  let lastBytes = -1;
  return {
    show(p) {
      if (p.bytes === lastBytes) return;
      lastBytes = p.bytes;
      if (out.isTTY) {
        const line = progressLine(p);
        out.write(`\r${line.slice(0, Math.max(20, (out.columns ?? 80) - 1))}\x1b[K`);
        drawn = true;
        return;
      }
      const tenth = p.total ? Math.floor((p.bytes / p.total) * 10) : Math.floor(p.bytes / 1024 ** 2 / 10);
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      out.write(`inbm: ${progressLine(p)}\n`);
    },
    end() {
      if (drawn) out.write('\r\x1b[K');
      drawn = false;
    },
  };
}
