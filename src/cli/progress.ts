/** How often the progress line is redrawn on a terminal, ms. */
export const PROGRESS_TTY_INTERVAL_MS = 200;
/** How often a progress line is printed when stderr is not a terminal, ms. */
export const PROGRESS_LOG_INTERVAL_MS = 10_000;
const BAR_WIDTH = 24;

/** A snapshot the progress line is drawn from. */
export interface ProgressSnapshot {
  label: string;
  /** Work done and total in the unit the fraction is measured in (bytes read, pages scanned); total 0 = unknown. */
  done: number;
  total: number;
  /** Rows processed so far (the rate is in rows/s). */
  rows: number;
  elapsedMs: number;
}

/**
 * Renders one progress line: bar, percent, rows, rows/s and ETA. The ETA
 * extrapolates the average rate of `done` so far, which is steady for a
 * file read or a table scan.
 */
export function renderProgress(s: ProgressSnapshot): string {
  const seconds = s.elapsedMs / 1_000;
  const rate = seconds > 0 ? s.rows / seconds : 0;
  const parts = [s.label];
  if (s.total > 0) {
    const fraction = Math.min(1, s.done / s.total);
    const filled = Math.round(fraction * BAR_WIDTH);
    parts.push(`[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`, `${(fraction * 100).toFixed(1).padStart(5)}%`);
    const eta = s.done > 0 && fraction < 1 ? ((s.total - s.done) / s.done) * seconds : 0;
    parts.push(`${formatCount(s.rows)} rows`, `${formatCount(Math.round(rate))} rows/s`, `ETA ${formatDuration(eta)}`);
  } else {
    parts.push(`${formatCount(s.rows)} rows`, `${formatCount(Math.round(rate))} rows/s`, `elapsed ${formatDuration(seconds)}`);
  }
  return parts.join('  ');
}

/** `1234567` → `1,234,567`. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Seconds → `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3_600);
  const m = Math.floor((total % 3_600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** Where progress goes: stderr in the CLIs. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * A throttled progress line on stderr. On a terminal it redraws one line in
 * place at most every PROGRESS_TTY_INTERVAL_MS; otherwise (a pipe, CI logs)
 * it prints a plain line every PROGRESS_LOG_INTERVAL_MS.
 */
export class ProgressReporter {
  private started: number;
  private lastDrawn = 0;
  private drawnOnce = false;
  private last: Omit<ProgressSnapshot, 'elapsedMs' | 'label'> = { done: 0, total: 0, rows: 0 };

  constructor(
    private label: string,
    private readonly stream: ProgressStream,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.started = now();
  }

  /** Starts a new phase (e.g. the next table being purged): new label, rate and ETA from zero. */
  restart(label: string): void {
    if (label === this.label) return;
    this.finish();
    this.label = label;
    this.started = this.now();
    this.lastDrawn = 0;
    this.last = { done: 0, total: 0, rows: 0 };
  }

  /** Records progress; draws when the throttle interval has passed. */
  update(done: number, total: number, rows: number): void {
    this.last = { done, total, rows };
    const now = this.now();
    const interval = this.stream.isTTY ? PROGRESS_TTY_INTERVAL_MS : PROGRESS_LOG_INTERVAL_MS;
    if (now - this.lastDrawn < interval) return;
    this.lastDrawn = now;
    this.draw(now);
  }

  /** Clears the terminal line (the summary follows). */
  finish(): void {
    if (this.stream.isTTY && this.drawnOnce) this.stream.write('\r\x1b[2K');
  }

  private draw(now: number): void {
    const line = renderProgress({ label: this.label, ...this.last, elapsedMs: now - this.started });
    this.drawnOnce = true;
    this.stream.write(this.stream.isTTY ? `\r\x1b[2K${line}` : `${line}\n`);
  }
}
