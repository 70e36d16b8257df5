/**
 * The client's overhead over a raw generated stub, on the Ingest stream.
 *
 *   npm run build && node dist/scripts/bench/client-overhead.js [events=200000] [runs=3]
 *
 * A child process runs a minimal Ingest server that acks every batch at once
 * (no storage), so the figures are the client's cost alone. The same events
 * are sent (a) through the raw stub by hand-written code that batches 500
 * events per message, keeps at most 10,000 unacked and honours write()
 * backpressure — the least a correct caller must do, minus resend and spool —
 * and (b) through IngestProducer.send (awaited per event, same batch size and
 * window; progress by flush()), (c) the same reading every receipt's `acked`
 * promise, and (d) with a spool (fsync 'never'). Reported: events/s and client
 * CPU µs per event (process.cpuUsage), median of `runs`.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createOrderFlowClient } from '../../src/client';
import type { IngestEventInput } from '../../src/client';
import type { Event } from '../../src/generated/orderflow/v1/Event';
import type { IngestRequest__Output } from '../../src/generated/orderflow/v1/IngestRequest';
import type { IngestResponse__Output } from '../../src/generated/orderflow/v1/IngestResponse';
import { loadOrderflowProto, orderFlowServiceDefinition } from '../../src/rpc/proto';

const BATCH = 500;
const WINDOW = 10_000;

function event(i: number): IngestEventInput {
  return {
    fill: {
      fill_id: `f-${i}`,
      order_id: `o-${i % 1000}`,
      account_id: 'acc-1',
      symbol: 'AAPL',
      side: 1,
      price: '189.25',
      qty: '100',
      ts_ns: (1_700_000_000_000_000_000n + BigInt(i)).toString(),
      fee: '0.35',
      venue: 'XNAS',
    },
  };
}

/** The server side: Welcome at 0, then an Ack for every batch. */
async function serve(): Promise<void> {
  const server = new grpc.Server();
  server.addService(orderFlowServiceDefinition(), {
    Ingest: (call: grpc.ServerDuplexStream<IngestRequest__Output, unknown>) => {
      call.on('data', (msg: IngestRequest__Output) => {
        if (msg.hello) call.write({ welcome: { source_id: msg.hello.source_id, last_committed_seq: '0' } });
        else if (msg.batch) {
          const events = msg.batch.events;
          call.write({ ack: { committed_seq: events[events.length - 1]!.seq, stored: events.length, rejected: 0, duplicates: 0 } });
        }
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  } as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  process.send!({ port });
}

interface Result {
  eventsPerSecond: number;
  cpuMicrosPerEvent: number;
}

async function measure(fn: () => Promise<void>, events: number): Promise<Result> {
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await fn();
  const wallNs = Number(process.hrtime.bigint() - started);
  const used = process.cpuUsage(cpu);
  return { eventsPerSecond: Math.round(events / (wallNs / 1e9)), cpuMicrosPerEvent: (used.user + used.system) / events };
}

async function rawStub(address: string, sourceId: string, events: number): Promise<void> {
  const { proto } = loadOrderflowProto();
  const stub = new proto.orderflow.v1.OrderFlow(address, grpc.credentials.createInsecure());
  const call = stub.Ingest();
  let acked = 0;
  let wake: (() => void) | undefined;
  const welcomed = new Promise<void>((resolve) => {
    call.on('data', (msg: IngestResponse__Output) => {
      if (msg.welcome) resolve();
      else if (msg.ack) {
        acked = Number(msg.ack.committed_seq);
        wake?.();
      }
    });
  });
  call.on('error', () => undefined);
  call.write({ hello: { source_id: sourceId } });
  await welcomed;
  let batch: Event[] = [];
  for (let i = 1; i <= events; i++) {
    const e = event(i);
    batch.push({ seq: String(i), fill: { ...e.fill, ts_ns: String(e.fill!.ts_ns) } });
    if (batch.length === BATCH || i === events) {
      const ok = call.write({ batch: { events: batch } });
      batch = [];
      if (!ok) await new Promise((r) => call.once('drain', r));
      while (i - acked > WINDOW) await new Promise<void>((r) => (wake = r));
    }
  }
  while (acked < events) await new Promise<void>((r) => (wake = r));
  call.end();
  stub.close();
}

async function producer(address: string, sourceId: string, events: number, options: { spoolPath?: string; perEventAcks?: boolean } = {}): Promise<void> {
  const client = createOrderFlowClient({ address });
  const p = await client.openIngest({ sourceId, maxBatchEvents: BATCH, maxWindowEvents: WINDOW, spool: options.spoolPath ? { path: options.spoolPath, fsync: 'never' } : undefined });
  let stored = 0;
  for (let i = 1; i <= events; i++) {
    const receipt = await p.send(event(i));
    if (options.perEventAcks) void receipt.acked.then(() => stored++);
  }
  await p.flush();
  await client.close();
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serve();
  const events = Number(process.argv[2] ?? 200_000);
  const runs = Number(process.argv[3] ?? 3);
  const child = fork(__filename, ['serve'], { stdio: 'inherit' });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })));
  const address = `127.0.0.1:${port}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orderflow-bench-spool-'));
  const variants: Record<string, (n: number) => Promise<void>> = {
    'raw stub': (n) => rawStub(address, `raw-${Math.random()}`, n),
    'producer (progress by flush)': (n) => producer(address, `p-${Math.random()}`, n),
    'producer + a promise per event': (n) => producer(address, `pa-${Math.random()}`, n, { perEventAcks: true }),
    'producer + spool (fsync never)': (n) => producer(address, `ps-${Math.random()}`, n, { spoolPath: path.join(dir, `${Math.random()}.spool`) }),
  };
  const results: Record<string, Result[]> = {};
  for (const fn of Object.values(variants)) await fn(20_000); // warm up JIT and the connection
  for (let run = 0; run < runs; run++) {
    for (const [name, fn] of Object.entries(variants)) {
      (results[name] ??= []).push(await measure(() => fn(events), events));
      process.stderr.write('.');
    }
  }
  process.stderr.write('\n');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(results['raw stub']!.map((r) => r.cpuMicrosPerEvent));
  console.log(`client overhead, ${events} events per run, median of ${runs} (node ${process.version}, ${os.cpus().length} CPUs)`);
  console.log('| variant | events/s | client CPU µs/event | CPU vs raw |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, rs] of Object.entries(results)) {
    const cpu = median(rs.map((r) => r.cpuMicrosPerEvent));
    console.log(`| ${name} | ${median(rs.map((r) => r.eventsPerSecond)).toLocaleString('en-US')} | ${cpu.toFixed(2)} | ${(cpu / base).toFixed(2)}× |`);
  }
  child.kill();
  fs.rmSync(dir, { recursive: true, force: true });
}

void main();
