import { performance } from 'node:perf_hooks';

const started = performance.now();

/** Formats elapsed ms as m:ss. */
export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1_000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** One progress line on stderr, prefixed with the time since the benchmark started (stdout stays clean). */
export function progress(scope: string, message: string): void {
  process.stderr.write(`[${formatElapsed(performance.now() - started)}] ${scope}: ${message}\n`);
}

/** Formats a number with thousands separators and at most `digits` decimals. */
export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}
