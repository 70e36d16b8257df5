/**
 * End-to-end ingest benchmark: acked events per second and receive→ack
 * latency (client send → Ack covering the batch) for 1 and 4 streams.
 *
 *   npm run bench:ingest                      # embedded PostgreSQL in a temp dir
 *   DATABASE_URL=postgres://… npm run bench:ingest
 *   BENCH_EVENTS=400000 BENCH_BATCH=1000 npm run bench:ingest
 *
 * The service runs as its own process (node dist/src/main.js), as in
 * production. The client pre-encodes every batch with the wire encoder and
 * sends the bytes through a pass-through serializer, so the client's own
 * protobuf cost does not compete with the service for the CPU.
 */
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedPostgres } from '../../src/db/embedded';
import type { IngestResponse__Output } from '../../src/generated/orderflow/v1/IngestResponse';
import type { EventInput } from '../../src/ingest/event';
import { encodeIngestBatch, encodeIngestHello } from '../../src/ingest/wire-format';
import { orderFlowServiceDefinition } from '../../src/rpc/proto';
import { silentLogger } from '../../src/telemetry/logger';

const TOTAL_EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 1_000);
/** Unacked events a client keeps in flight (a real adapter bounds its resend buffer too). */
const WINDOW_EVENTS = Number(process.env.BENCH_WINDOW ?? 50_000);
const MAIN_JS = path.resolve(__dirname, '../../src/main.js');
const BASE_TS_NS = 1_700_000_000_000_000_000n;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function event(seq: number, stream: number): EventInput {
  const n = BigInt(seq);
  if (seq % 2 === 0) {
    return {
      seq: String(seq),
      payload: 'fill',
      fill: {
        fill_id: `s${stream}-f-${seq}`,
        order_id: `s${stream}-o-${seq >> 2}`,
        account_id: `acc-${seq % 97}`,
        symbol: seq % 3 === 0 ? 'AAPL' : 'MSFT',
        side: 1 + (seq % 2),
        price: `${100 + (seq % 50)}.${seq % 100}`,
        qty: `${1 + (seq % 9)}`,
        ts_ns: (BASE_TS_NS + n).toString(),
        fee: '-0.01',
        venue: 'XNAS',
      },
    };
  }
  return {
    seq: String(seq),
    payload: 'order',
    order: {
      order_id: `s${stream}-o-${seq >> 2}`,
      account_id: `acc-${seq % 97}`,
      symbol: 'ESZ5',
      side: 1,
      order_type: 2,
      event_type: 1,
      price: `4500.${seq % 100}`,
      qty: '2',
      time_in_force: 1,
      ts_ns: (BASE_TS_NS + n).toString(),
      client_order_id: `cl-${seq}`,
    },
  };
}

interface StreamResult {
  events: number;
  latenciesMs: number[];
}

async function runStream(address: string, sourceId: string, streamIndex: number, events: number, windowEvents = WINDOW_EVENTS): Promise<StreamResult> {
  const batches: { buf: Buffer; lastSeq: number }[] = [];
  for (let from = 1; from <= events; from += BATCH) {
    const list: EventInput[] = [];
    const to = Math.min(events, from + BATCH - 1);
    for (let s = from; s <= to; s++) list.push(event(s, streamIndex));
    batches.push({ buf: encodeIngestBatch(list), lastSeq: to });
  }
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const deserialize = orderFlowServiceDefinition().Ingest.responseDeserialize as (b: Buffer) => IngestResponse__Output;
  const call = client.makeBidiStreamRequest<Buffer, IngestResponse__Output>('/orderflow.v1.OrderFlow/Ingest', (b: Buffer) => b, deserialize);
  const latenciesMs: number[] = [];
  const sentAt: number[] = [];
  let acked = 0;
  let ackIndex = 0;
  let wake: (() => void) | undefined;
  const done = new Promise<void>((resolve, reject) => {
    call.on('data', (msg: IngestResponse__Output) => {
      if (msg.ack) {
        acked = Number(msg.ack.committed_seq);
        const now = performance.now();
        while (ackIndex < sentAt.length && batches[ackIndex]!.lastSeq <= acked) latenciesMs.push(now - sentAt[ackIndex++]!);
        wake?.();
        if (acked >= events) resolve();
      } else if (msg.reject) {
        reject(new Error(`unexpected reject ${msg.reject.reason}`));
      } else if (msg.welcome) {
        wake?.();
      }
    });
    call.on('error', reject);
  });
  call.write(encodeIngestHello(sourceId));
  for (let i = 0; i < batches.length; i++) {
    while (batches[i]!.lastSeq - acked > windowEvents) await new Promise<void>((r) => (wake = r));
    sentAt.push(performance.now());
    if (!call.write(batches[i]!.buf)) await new Promise<void>((r) => call.once('drain', () => r()));
  }
  await done;
  call.end();
  client.close();
  return { events, latenciesMs };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function scenario(address: string, streams: number, runId: string, windowEvents = WINDOW_EVENTS, total = TOTAL_EVENTS, label = `${streams} stream(s)`): Promise<void> {
  const perStream = Math.floor(total / streams);
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: streams }, (_, i) => runStream(address, `bench-${runId}-${streams}-${windowEvents}-${i}`, i, perStream, windowEvents)));
  const seconds = (performance.now() - started) / 1000;
  const events = results.reduce((sum, r) => sum + r.events, 0);
  const latencies = results.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  process.stdout.write(
    `${label}: ${events} events in ${seconds.toFixed(2)} s = ${Math.round(events / seconds).toLocaleString('en-US')} acked events/s; ` +
      `send→ack latency per ${BATCH}-event batch p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms\n`,
  );
}

async function main(): Promise<void> {
  let databaseUrl = process.env.DATABASE_URL;
  let embedded: EmbeddedPostgres | undefined;
  let dataDir: string | undefined;
  if (!databaseUrl) {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'orderflow-bench-'));
    await fs.chmod(dataDir, 0o755);
    embedded = new EmbeddedPostgres({ dataDir, port: await freePort(), logger: silentLogger });
    databaseUrl = await embedded.start();
  }
  const grpcPort = await freePort();
  // e.g. BENCH_SERVICE_NODE_ARGS=--cpu-prof to profile the service.
  const nodeArgs = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, MAIN_JS], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/',
      DATABASE_URL: databaseUrl,
      GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
      METRICS_ADDRESS: 'off',
      LOG_LEVEL: 'error',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    const address = `127.0.0.1:${grpcPort}`;
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 60_000, (err) => (err ? reject(err) : resolve())));
    client.close();
    const runId = Date.now().toString(36);
    const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
    process.stdout.write(
      `orderflow ingest bench: ${TOTAL_EVENTS} events per scenario, batches of ${BATCH}, up to ${WINDOW_EVENTS} unacked per stream; ` +
        `${os.cpus().length} CPUs, load average ${load}; ${embedded ? 'embedded PostgreSQL' : 'DATABASE_URL'}\n`,
    );
    await scenario(address, 1, `${runId}w`, WINDOW_EVENTS, TOTAL_EVENTS / 4, 'warm-up'); // JIT, connections
    for (const streams of [1, 4]) await scenario(address, streams, runId);
    // Latency without queueing: one batch in flight per stream.
    for (const streams of [1, 4]) await scenario(address, streams, `${runId}l`, BATCH, Math.min(TOTAL_EVENTS, 20_000 * streams), `${streams} stream(s), one batch in flight`);
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    await db.query("DELETE FROM fills WHERE source_id LIKE 'bench-%'");
    await db.query("DELETE FROM order_events WHERE source_id LIKE 'bench-%'");
    await db.query("DELETE FROM sources WHERE source_id LIKE 'bench-%'");
    await db.end();
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await embedded?.stop();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
