import { performance } from 'node:perf_hooks';
import type { ChildServer } from './child';
import { createIngestDriver, type IngestClientKind, type IngestDriver, type IngestEvent, type IngestStream } from './ingest-driver';
import { runOpenLoop, sleep } from './load';
import { processTreeCpuMicros } from './proc-stats';
import { varintLength, writeVarint } from '../../../src/client/event-codec';
import { encodeEvent } from '../../../src/ingest/wire-format';
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
  /** The same payloads as encoded Fill fields 2–10 (fill_id, field 1, is appended per event). */
  private encodedPayloads: Buffer[] | undefined;
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

  /**
   * Encodes the payload ring (once; ~0.2 s for 20,000 fills). Call it before
   * a timed run: done lazily inside an open loop, it would stall the first
   * sends and show up as latency the server never caused.
   */
  prepareEncoded(): Buffer[] {
    return (this.encodedPayloads ??= this.payloads.map(encodeFillWithoutId));
  }

  /**
   * The next `size` events as one encoded IngestRequest{batch}: the same
   * events `next` would build, written straight into one buffer (protobuf
   * lets fill_id, field 1, follow the pre-encoded fields).
   */
  nextEncoded(size: number): { request: Buffer; lastSeq: number } {
    const payloads = this.prepareEncoded();
    const prefix = `${this.sourceId}-F`;
    const parts: Array<{ seq: number; payload: Buffer; fillId: string; fillLength: number; eventLength: number }> = new Array(size);
    let batchLength = 0;
    for (let i = 0; i < size; i++) {
      const seq = this.nextSeq++;
      const payload = payloads[this.cursor]!;
      this.cursor = (this.cursor + 1) % PAYLOAD_RING;
      const fillId = prefix + seq;
      const fillLength = payload.length + 1 + varintLength(fillId.length) + fillId.length;
      const eventLength = 1 + varintLength(seq) + 1 + varintLength(fillLength) + fillLength;
      parts[i] = { seq, payload, fillId, fillLength, eventLength };
      batchLength += 1 + varintLength(eventLength) + eventLength;
    }
    const request = Buffer.allocUnsafe(1 + varintLength(batchLength) + batchLength);
    let at = writeVarint(request, 0, (2 << 3) | 2); // IngestRequest.batch
    at = writeVarint(request, at, batchLength);
    for (const p of parts) {
      at = writeVarint(request, at, (1 << 3) | 2); // EventBatch.events
      at = writeVarint(request, at, p.eventLength);
      at = writeVarint(request, at, 1 << 3); // Event.seq
      at = writeVarint(request, at, p.seq);
      at = writeVarint(request, at, (3 << 3) | 2); // Event.fill
      at = writeVarint(request, at, p.fillLength);
      at += p.payload.copy(request, at);
      at = writeVarint(request, at, (1 << 3) | 2); // Fill.fill_id (ASCII)
      at = writeVarint(request, at, p.fillId.length);
      at += request.write(p.fillId, at, 'latin1');
    }
    return { request, lastSeq: this.nextSeq - 1 };
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

/** Fill fields 2–10 of `fill` as encoded bytes: an Event with only the fill, its two header bytes stripped. */
function encodeFillWithoutId(fill: Record<string, string | number>): Buffer {
  const event = encodeEvent({ seq: '', payload: 'fill', fill: { ...fill, fill_id: '' } as never });
  // Event = tag(3, LEN) varint(length) Fill; a bench fill is under 16 KiB, so the length takes one or two bytes.
  const header = event[1]! < 0x80 ? 2 : 3;
  return event.subarray(header);
}

/** Sends the next `size` events of `factory` on `stream`, encoded ahead when the driver takes that; returns the send result and last seq. */
function sendNext(driver: IngestDriver, stream: IngestStream, factory: BatchFactory, size: number): { ok: boolean; lastSeq: number } {
  if (driver.sendsEncoded) {
    const { request, lastSeq } = factory.nextEncoded(size);
    return { ok: stream.sendEncoded!(request), lastSeq };
  }
  const { events, lastSeq } = factory.next(size);
  return { ok: stream.sendBatch(events), lastSeq };
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
    if (driver.sendsEncoded) factory.prepareEncoded();
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
      const { ok } = sendNext(driver, stream, factory, o.eventsPerBatch);
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
    if (driver.sendsEncoded) lane.factory.prepareEncoded();
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
      // Open loop: write regardless of backpressure; a slow server shows as latency.
      const { lastSeq } = sendNext(driver, lane.stream, lane.factory, o.eventsPerBatch);
      return new Promise<void>((resolve) => lane.pending.push({ lastSeq, resolve }));
    },
  });
  // A stream that failed while the load ran fails the run. One still owing acks when closed
  // (an offered load above capacity) is cancelled by close(): its unacked batches are
  // already counted as timed out, and the latency of what was acked stands.
  const failed = streams.find((s) => s.error);
  await Promise.all(streams.map((s) => s.close(10_000)));
  driver.close();
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
