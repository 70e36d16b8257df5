import { performance } from 'node:perf_hooks';
import type { ChildServer } from './child';
import { createIngestDriver, type IngestClientKind, type IngestEvent, type IngestStream } from './ingest-driver';
import { runOpenLoop, sleep } from './load';
import { processTreeCpuMicros } from './proc-stats';
import { createFillGenerator, fillToEvent } from './rows';
import type { LatencySummary } from './stats';
import { LatencyRecorder } from './stats';

/** Unacknowledged events a saturating client keeps per stream (below INGEST_STREAM_MAX_BUFFERED's default of 50,000). */
export const MAX_UNACKED_PER_STREAM = 20_000;
/** Distinct fill payloads each stream cycles through (fill_id and seq are unique per event regardless). */
const PAYLOAD_RING = 20_000;

/**
 * Builds EventBatches for one source cheaply: fill payloads come from a
 * pre-generated ring (same seeded rows as the limit), and each event gets its
 * own seq and a unique fill_id. Keeps the load generator's CPU small next to
 * the server's on a 2-core machine.
 */
export class BatchFactory {
  private readonly payloads: Array<Record<string, string | number>>;
  private nextSeq: number;
  private cursor = 0;

  constructor(
    readonly sourceId: string,
    seed: number,
    firstSeq = 1,
  ) {
    const next = createFillGenerator({ seed, sourceId });
    this.payloads = Array.from({ length: PAYLOAD_RING }, () => fillToEvent(next()).fill);
    this.nextSeq = firstSeq;
  }

  /** Seq the next event will carry. */
  get seq(): number {
    return this.nextSeq;
  }

  /** A batch of `size` events; returns it with the seq of its last event. */
  next(size: number): { events: IngestEvent[]; lastSeq: number } {
    const events: IngestEvent[] = new Array(size);
    for (let i = 0; i < size; i++) {
      const seq = this.nextSeq++;
      const payload = this.payloads[this.cursor]!;
      this.cursor = (this.cursor + 1) % PAYLOAD_RING;
      events[i] = { seq: String(seq), fill: { ...payload, fill_id: `${this.sourceId}-F${seq}` } };
    }
    return { events, lastSeq: this.nextSeq - 1 };
  }
}

/** Opens `count` streams named `<prefix>-<i>`. */
async function openStreams(kind: IngestClientKind, port: number, prefix: string, count: number) {
  const driver = createIngestDriver(kind, port);
  try {
    const streams: IngestStream[] = [];
    for (let i = 0; i < count; i++) streams.push(await driver.open(`${prefix}-${i + 1}`));
    return { driver, streams };
  } catch (err) {
    driver.close();
    throw err;
  }
}

/** What one saturation run measured. */
export interface SaturationResult {
  streams: number;
  /** Events acked inside the measured window. */
  ackedEvents: number;
  /** Events sent over the whole run, and acked by the time the streams closed. */
  sentEvents: number;
  totalAckedEvents: number;
  windowMs: number;
  eventsPerSec: number;
  serverCpuMicros: number;
  pgCpuMicros: number;
  clientCpuMicros: number;
  peakRssBytes: number;
  rejects: number;
}

/** Options of runSaturation. */
export interface SaturationOptions {
  server: ChildServer;
  postmasterPid: number;
  client: IngestClientKind;
  streams: number;
  eventsPerBatch: number;
  warmupMs: number;
  windowMs: number;
  seed: number;
}

/**
 * Every stream sends as fast as the server acks, keeping at most
 * MAX_UNACKED_PER_STREAM events unacknowledged and honouring write
 * backpressure. Counts events acked inside the window and the CPU each party
 * used in it.
 */
export async function runSaturation(o: SaturationOptions): Promise<SaturationResult> {
  const { driver, streams } = await openStreams(o.client, o.server.port, `bench-sat-${o.seed}`, o.streams);
  let acked = 0;
  let sent = 0;
  let stopped = false;
  let failure: Error | undefined;
  const senders = streams.map(async (stream, i) => {
    const factory = new BatchFactory(stream.sourceId, o.seed + i, Number(stream.lastCommittedSeq) + 1);
    let committed = Number(stream.lastCommittedSeq);
    let wake: (() => void) | undefined;
    stream.onAck((seq) => {
      const n = Number(seq);
      acked += n - committed;
      committed = n;
      wake?.();
    });
    while (!stopped && !failure) {
      if (factory.seq - 1 - committed >= MAX_UNACKED_PER_STREAM) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          // Re-check now and then: a failed stream sends no more acks.
          setTimeout(resolve, 100).unref();
        });
        wake = undefined;
        if (stream.error) failure ??= stream.error;
        continue;
      }
      const ok = stream.sendBatch(factory.next(o.eventsPerBatch).events);
      sent += o.eventsPerBatch;
      if (!ok) await stream.waitDrain().catch((err: Error) => (failure ??= err));
    }
  });

  await sleep(o.warmupMs);
  const acked0 = acked;
  const server0 = o.server.cpuMicros();
  const pg0 = processTreeCpuMicros(o.postmasterPid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(o.windowMs);
  const windowMs = performance.now() - t0;
  const ackedEvents = acked - acked0;
  const serverCpuMicros = o.server.cpuMicros() - server0;
  const pgCpuMicros = processTreeCpuMicros(o.postmasterPid) - pg0;
  const clientCpu = process.cpuUsage(client0);
  const peakRssBytes = o.server.memory().peakRssBytes;
  stopped = true;
  await Promise.all(senders);
  await Promise.all(streams.map((s) => s.close(10_000)));
  driver.close();
  if (failure) throw new Error(`an Ingest stream failed during the run: ${failure.message}`, { cause: failure });
  return {
    streams: o.streams,
    ackedEvents,
    sentEvents: sent,
    totalAckedEvents: acked,
    windowMs,
    eventsPerSec: (ackedEvents * 1_000) / windowMs,
    serverCpuMicros,
    pgCpuMicros,
    clientCpuMicros: clientCpu.user + clientCpu.system,
    peakRssBytes,
    rejects: streams.reduce((n, s) => n + s.rejects, 0),
  };
}

/** What one fixed-rate run measured. */
export interface OfferedResult {
  offeredPerSec: number;
  achievedPerSec: number;
  batches: number;
  errors: number;
  timedOutBatches: number;
  serverCpuMicros: number;
  latency: LatencyRecorder;
  summary: Omit<LatencySummary, 'distribution'>;
}

/** Options of runOffered. */
export interface OfferedOptions {
  server: ChildServer;
  client: IngestClientKind;
  streams: number;
  ratePerSec: number;
  eventsPerBatch: number;
  warmupMs: number;
  windowMs: number;
  seed: number;
}

/**
 * Open loop: batches go out at ratePerSec / eventsPerBatch per second, round
 * robin over the streams, each at its intended time whatever the server does.
 * A batch's latency runs from its intended send time to the first Ack whose
 * committed_seq covers its last event (every event of a batch shares it, so
 * per-batch percentiles are per-event percentiles).
 */
export async function runOffered(o: OfferedOptions): Promise<OfferedResult> {
  const { driver, streams } = await openStreams(o.client, o.server.port, `bench-rate-${o.seed}`, o.streams);
  const lanes = streams.map((stream, i) => {
    const lane = { stream, factory: new BatchFactory(stream.sourceId, o.seed + i, Number(stream.lastCommittedSeq) + 1), pending: [] as Array<{ lastSeq: number; resolve: () => void }> };
    stream.onAck((seq) => {
      const committed = Number(seq);
      while (lane.pending.length > 0 && lane.pending[0]!.lastSeq <= committed) lane.pending.shift()!.resolve();
    });
    return lane;
  });
  let server0 = 0;
  let serverCpuMicros = 0;
  const result = await runOpenLoop({
    ratePerSec: o.ratePerSec / o.eventsPerBatch,
    warmupMs: o.warmupMs,
    durationMs: o.windowMs,
    drainTimeoutMs: 15_000,
    onWindowStart: () => (server0 = o.server.cpuMicros()),
    onWindowEnd: () => (serverCpuMicros = o.server.cpuMicros() - server0),
    call: (i) => {
      const lane = lanes[i % lanes.length]!;
      if (lane.stream.error) return Promise.reject(lane.stream.error);
      const { events, lastSeq } = lane.factory.next(o.eventsPerBatch);
      const acked = new Promise<void>((resolve) => lane.pending.push({ lastSeq, resolve }));
      // Open loop: write regardless of backpressure; a slow server shows as latency.
      lane.stream.sendBatch(events);
      return acked;
    },
  });
  await Promise.all(streams.map((s) => s.close(10_000)));
  driver.close();
  const failed = streams.find((s) => s.error);
  if (failed) throw new Error(`an Ingest stream failed during the run: ${failed.error!.message}`, { cause: failed.error });
  const { distribution: _d, ...summary } = result.latency.summary();
  return {
    offeredPerSec: o.ratePerSec,
    achievedPerSec: result.ratePerSec * o.eventsPerBatch,
    batches: result.completed,
    errors: result.errors,
    timedOutBatches: result.timedOut,
    serverCpuMicros,
    latency: result.latency,
    summary,
  };
}
