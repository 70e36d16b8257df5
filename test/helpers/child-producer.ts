import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** Path of the compiled spool producer script. */
export const SPOOL_PRODUCER_JS = path.resolve(__dirname, 'spool-producer.js');

/** A spool producer process and the JSON lines it reported. */
export interface ChildProducer {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  /** Resolves with the first reported line matching `predicate`. */
  waitFor(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code or signal. */
  exited: Promise<number | string>;
  stderr(): string;
}

/** Starts `node spool-producer.js <args>`. */
export function startChildProducer(args: Record<string, unknown>): ChildProducer {
  const child = spawn(process.execPath, [SPOOL_PRODUCER_JS, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  let buffer = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>);
      buffer = buffer.slice(nl + 1);
      for (const l of listeners) l();
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const waitFor = (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 60_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = lines.find(predicate);
        if (!found) return false;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`child producer did not report in time; lines: ${JSON.stringify(lines.slice(-3))} stderr: ${err}`));
      }, timeoutMs);
      if (!check()) listeners.add(check);
      void exited.then(() => setTimeout(() => {
        if (listeners.has(check)) {
          listeners.delete(check);
          clearTimeout(timer);
          reject(new Error(`child producer exited; lines: ${JSON.stringify(lines.slice(-3))} stderr: ${err}`));
        }
      }, 50));
    });
  return { child, lines, waitFor, exited, stderr: () => err };
}
