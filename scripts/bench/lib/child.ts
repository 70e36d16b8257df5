import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HEALTH_PROTO_PATH } from '../../../src/rpc/health';
import { PROTO_LOADER_OPTIONS } from '../../../src/rpc/proto';
import { freePort } from './postgres';
import { processCpuMicros, processMemory, type ProcMemory } from './proc-stats';

/** Compiled service entry (`node dist/src/main.js`), resolved from dist/scripts/bench/lib. */
export const SERVICE_MAIN_JS = path.resolve(__dirname, '../../../src/main.js');
/** Compiled trivial gRPC server (the floor of the read scenarios). */
export const FLOOR_SERVER_JS = path.resolve(__dirname, 'floor-server.js');

/** How long a child may take to answer health SERVING, ms. */
const READY_TIMEOUT_MS = 60_000;
/** How long a child may take to exit after SIGTERM before it is killed, ms. */
const STOP_TIMEOUT_MS = 30_000;
/** Output kept per child for error messages, characters. */
const OUTPUT_TAIL_CHARS = 8_000;

/** Children still running, so an interrupted or failed run never leaves one behind. */
const live = new Set<ChildServer>();

/** Stops every child server still running. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop().catch(() => undefined)));
}

/** A gRPC server running as a child process (the service or the floor). */
export class ChildServer {
  private tail = '';
  private readonly exited: Promise<number | string>;
  private stopPromise: Promise<void> | undefined;
  private exitValue: number | string | undefined;

  private constructor(
    /** What it is, for messages ("orderflow", "floor"). */
    readonly name: string,
    private readonly child: ChildProcess,
    /** Loopback port of its gRPC server. */
    readonly port: number,
  ) {
    const keep = (d: Buffer) => {
      this.tail = (this.tail + d.toString()).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exitValue = code ?? signal ?? -1;
        live.delete(this);
        resolve(this.exitValue);
      }),
    );
  }

  /**
   * Starts `node <script>` with `env` (plus PATH/HOME) and GRPC_ADDRESS on a
   * free loopback port, then waits for grpc.health.v1 SERVING.
   */
  static async start(name: string, script: string, env: Record<string, string>): Promise<ChildServer> {
    const port = await freePort();
    const child = spawn(process.execPath, [script], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', GRPC_ADDRESS: `127.0.0.1:${port}`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ChildServer(name, child, port);
    live.add(server);
    try {
      await server.waitReady();
    } catch (err) {
      await server.stop().catch(() => undefined);
      throw err;
    }
    return server;
  }

  /** Process id (for /proc CPU and memory). */
  get pid(): number {
    return this.child.pid!;
  }

  /** Output the child wrote lately (for error messages). */
  output(): string {
    return this.tail;
  }

  /** CPU µs the child used so far (all threads). */
  cpuMicros(): number {
    return processCpuMicros(this.pid);
  }

  /** Current and peak RSS of the child. */
  memory(): ProcMemory {
    return processMemory(this.pid);
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = '';
    while (Date.now() < deadline) {
      if (this.exitValue !== undefined) throw new Error(`${this.name} exited (${this.exitValue}) before it was ready. Output:\n${this.tail}`);
      last = await checkHealth(this.port);
      if (last === 'SERVING') return;
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`${this.name} was not SERVING within ${READY_TIMEOUT_MS} ms (last: ${last}). Output:\n${this.tail}`);
  }

  /** SIGTERM, then SIGKILL when it outlives the deadline. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopPromise) {
      this.stopPromise = (async () => {
        if (this.exitValue !== undefined) return;
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await this.exited;
        clearTimeout(timer);
      })();
    }
    return this.stopPromise;
  }
}

/** Starts orderflow (`node dist/src/main.js`, or `script`) against `databaseUrl` with extra env (e.g. INGEST_BATCH_MAX_MS). */
export function startService(databaseUrl: string, extraEnv: Record<string, string> = {}, script: string = SERVICE_MAIN_JS): Promise<ChildServer> {
  // warn: the benchmark measures the data path, not per-batch log lines.
  return ChildServer.start('orderflow', script, { DATABASE_URL: databaseUrl, METRICS_ADDRESS: 'off', LOG_LEVEL: 'warn', ...extraEnv });
}

/** Starts the trivial grpc-js server whose GetOrder returns a constant Order. */
export function startFloorServer(): Promise<ChildServer> {
  return ChildServer.start('floor', FLOOR_SERVER_JS, {});
}

type HealthClient = grpc.Client & {
  Check(req: { service: string }, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
};
let healthCtor: (new (address: string, creds: grpc.ChannelCredentials) => HealthClient) | undefined;

/** grpc.health.v1 status of the whole server on `port`, or `ERROR:<code>`. */
export async function checkHealth(port: number, timeoutMs = 1_000): Promise<string> {
  if (!healthCtor) {
    const def = protoLoader.loadSync(HEALTH_PROTO_PATH, { ...PROTO_LOADER_OPTIONS, enums: String });
    const loaded = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: typeof healthCtor } } } };
    healthCtor = loaded.grpc.health.v1.Health;
  }
  const client = new healthCtor!(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve) => {
      client.Check({ service: '' }, { deadline: Date.now() + timeoutMs }, (err, res) => resolve(err ? `ERROR:${grpc.status[err.code]}` : String(res?.status)));
    });
  } finally {
    client.close();
  }
}
