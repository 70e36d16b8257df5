import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

/** The repository's docker/ directory (tests run from dist/test/...). */
export const DOCKER_DIR = path.resolve(__dirname, '../../../../docker');

/** Result of one promtool run. */
export interface PromtoolResult {
  code: number | null;
  output: string;
}

/** True when `promtool` is on PATH. */
export function hasPromtool(): boolean {
  return spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Skips the calling test or hook when promtool is missing, with a clear
 * message; under CI (process.env.CI) a missing promtool fails instead,
 * since .ci/run installs it.
 */
export function requirePromtool(ctx: Mocha.Context): void {
  if (hasPromtool()) return;
  if (process.env.CI) throw new Error('promtool is not installed; .ci/run installs Debian\'s "prometheus" package for it.');
  // eslint-disable-next-line no-console
  console.warn('    promtool not found: skipping (install it with `apt-get install prometheus`).');
  ctx.skip();
}

/** Runs promtool with `args` (and `stdin`), in `cwd`. */
export function runPromtool(args: string[], options: { stdin?: string; cwd?: string } = {}): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd: options.cwd ?? DOCKER_DIR, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(options.stdin ?? '');
  });
}
