import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedPostgres } from '../../src/db/embedded';
import { silentLogger } from '../../src/telemetry/logger';

/** A database for a benchmark: DATABASE_URL when set, else a throwaway embedded PostgreSQL. */
export interface BenchDatabase {
  url: string;
  /** Stops and removes the embedded cluster (no-op with DATABASE_URL). */
  stop(): Promise<void>;
}

/** Starts (or reuses) the database a benchmark runs against. */
export async function startBenchDatabase(name: string): Promise<BenchDatabase> {
  const external = process.env.DATABASE_URL;
  if (external) return { url: external, stop: async () => undefined };
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `orderflow-bench-${name}-`));
  await fs.chmod(dir, 0o755);
  const embedded = new EmbeddedPostgres({ dataDir: dir, port: await freePort(), logger: silentLogger, settings: { fsync: 'off', full_page_writes: 'off' } });
  const url = await embedded.start();
  return {
    url,
    stop: async () => {
      await embedded.stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The q-quantile (0..1) of sorted numbers. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Median of numbers. */
export function median(values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}
