import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

/** Path of the compiled service entry point. */
export const MAIN_JS = path.resolve(__dirname, '../../src/main.js');

/** A service process started by a test. */
export interface ServiceProcess {
  child: ChildProcess;
  /** Everything the process wrote so far. */
  output(): string;
  /** Resolves with the exit code (or the signal name) once the process ends. */
  exited: Promise<number | string>;
}

/** Starts `node dist/src/main.js` (node directly: npm would not forward signals). */
export function startService(env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, [MAIN_JS], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, output: () => out, exited };
}

/** Resolves with the exit code, or rejects when the process outlives `timeoutMs`. */
export async function waitForExit(proc: ServiceProcess, timeoutMs: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`process still running after ${timeoutMs} ms. Output:\n${proc.output()}`)), timeoutMs);
  });
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Pids of live postgres processes whose command line names `dataDir`. */
export async function postgresPidsFor(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await fs.readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (cmdline.includes('postgres') && cmdline.includes(dataDir)) pids.push(Number(entry));
    } catch {
      // Process ended while we looked.
    }
  }
  return pids;
}
