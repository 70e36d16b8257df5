import { expect } from 'chai';
import sinon from 'sinon';
import { loadConfig } from '../../../src/config';
import { RejectCode } from '../../../src/generated/orderflow/v1/RejectCode';
import type { BatchWindow } from '../../../src/ingest/batch-window';
import type { EventInput } from '../../../src/ingest/event';
import type { FlushOrder } from '../../../src/ingest/flush-order';
import type { BatchSink, FlushOutcome } from '../../../src/ingest/flush-writer';
import type { AckOut, RejectOut, StreamSink } from '../../../src/ingest/ingest-stream';
import { IngestPipeline } from '../../../src/ingest/pipeline';
import { accountTagHash, orderTagHash, positionTagHash } from '../../../src/store/cache-tags';
import type { ChangeSet } from '../../../src/store/change-set';
import { silentLogger } from '../../../src/telemetry/logger';

/** What a fake flush saw, copied before the window is reused. */
interface Written {
  events: number;
  byStream: Map<string, { rows: number; rejects: number; state: string }>;
  signal: AbortSignal;
  order: FlushOrder | undefined;
  resolve: (outcome?: Partial<FlushOutcome>) => void;
}

class FakeSink implements BatchSink {
  readonly written: Written[] = [];
  write(window: BatchWindow, signal: AbortSignal, order?: FlushOrder): Promise<FlushOutcome> {
    return new Promise((resolve) => {
      const byStream = new Map<string, { rows: number; rejects: number; state: string }>();
      for (const c of window.contributions) byStream.set(c.stream.sourceId, { rows: c.rows, rejects: c.rejects.length, state: c.stream.state });
      this.written.push({
        events: window.events,
        byStream,
        signal,
        order,
        resolve: (outcome) => resolve({ committed: true, fenced: new Set(), refused: new Map(), ...outcome }),
      });
    });
  }
}

class RecordingSink implements StreamSink {
  readonly log: string[] = [];
  readonly acks: AckOut[] = [];
  readonly rejects: RejectOut[] = [];
  paused = false;
  fencedCalls = 0;
  sendReject(reject: RejectOut): void {
    this.rejects.push(reject);
    this.log.push(`reject:${reject.seq}`);
  }
  sendAck(ack: AckOut): void {
    this.acks.push(ack);
    this.log.push(`ack:${ack.committed_seq}`);
  }
  fenced(): void {
    this.fencedCalls++;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

const fill = (seq: number, patch: Record<string, unknown> = {}): EventInput => ({
  seq: String(seq),
  payload: 'fill',
  fill: { fill_id: `f${seq}`, order_id: 'o', account_id: 'a', symbol: 'S', side: 1, price: '1.5', qty: '2', ts_ns: '1700000000000000000', fee: '', venue: '', ...patch },
});
const fills = (from: number, to: number): EventInput[] => Array.from({ length: to - from + 1 }, (_, i) => fill(from + i));

function config(env: Record<string, string> = {}) {
  return loadConfig({ INGEST_BATCH_MAX_MS: '10', ...env }).ingest;
}

/** Lets pending promise callbacks run (fake timers do not cover microtasks). */
const settle = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('ingest/pipeline (unit, fake sink and timers)', () => {
  let clock: sinon.SinonFakeTimers;
  let sink: FakeSink;
  const epochs = new Map<string, number>();
  const openSource = async (id: string) => {
    epochs.set(id, (epochs.get(id) ?? -1) + 1);
    return { lastSeq: '0', epoch: String(epochs.get(id)) };
  };

  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] });
    sink = new FakeSink();
    epochs.clear();
  });
  afterEach(() => clock.restore());

  function pipeline(env: Record<string, string> = {}, changes: ChangeSet[] = []): IngestPipeline {
    return new IngestPipeline({ config: config(env), sink, openSource, logger: silentLogger, hooks: { afterCommit: (c) => changes.push(c) } });
  }

  it('closes a window after INGEST_BATCH_MAX_MS, acks only after the commit', async () => {
    const p = pipeline();
    const s = new RecordingSink();
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: fills(1, 3) }, 0);
    expect(sink.written).to.have.length(0);
    await clock.tickAsync(9);
    expect(sink.written).to.have.length(0);
    await clock.tickAsync(1);
    expect(sink.written).to.have.length(1);
    expect(s.acks).to.have.length(0);
    sink.written[0]!.resolve();
    await settle();
    expect(s.acks).to.deep.equal([{ committed_seq: '3', stored: 3, rejected: 0, duplicates: 0 }]);
  });

  it('with INGEST_BATCH_MAX_MS=0 flushes as soon as the current message is taken', async () => {
    const p = pipeline({ INGEST_BATCH_MAX_MS: '0' });
    const stream = await p.openStream('src', new RecordingSink());
    p.submit(stream, { events: fills(1, 3) }, 0);
    p.submit(stream, { events: fills(4, 5) }, 0);
    expect(sink.written).to.have.length(0);
    await clock.tickAsync(0);
    expect(sink.written.map((w) => w.events)).to.deep.equal([5]);
  });

  it('closes on rows and, at depth 1, keeps exactly one flush in flight while the next window fills', async () => {
    const p = pipeline({ INGEST_BATCH_MAX_ROWS: '100', INGEST_FLUSH_PIPELINE_DEPTH: '1' });
    const s = new RecordingSink();
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: fills(1, 250) }, 0);
    // Two full windows closed; only the first is being written.
    expect(sink.written.map((w) => w.events)).to.deep.equal([100]);
    sink.written[0]!.resolve();
    await settle();
    expect(sink.written.map((w) => w.events)).to.deep.equal([100, 100]);
    expect(s.acks.map((a) => a.committed_seq)).to.deep.equal(['100']);
    sink.written[1]!.resolve();
    await settle();
    // The partial third window waits for its time limit.
    expect(sink.written).to.have.length(2);
    await clock.tickAsync(10);
    expect(sink.written.map((w) => w.events)).to.deep.equal([100, 100, 50]);
    sink.written[2]!.resolve();
    await settle();
    expect(s.acks.map((a) => a.committed_seq)).to.deep.equal(['100', '200', '250']);
  });

  it('at depth 2 writes two windows at once, the second behind the first, and acks in window order', async () => {
    const p = pipeline({ INGEST_BATCH_MAX_ROWS: '100' });
    const s = new RecordingSink();
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: fills(1, 250) }, 0);
    expect(sink.written.map((w) => w.events)).to.deep.equal([100, 100]);
    const [first, second] = sink.written as [Written, Written];
    expect(first.order!.predecessor).to.equal(undefined);
    expect(second.order!.predecessor).to.equal(first.order!.ticket);
    // The second window's commit answered first: its ack waits for the first window's.
    second.resolve();
    await settle();
    expect(s.acks).to.have.length(0);
    expect(first.order!.ticket.isDone).to.equal(false);
    first.resolve();
    await settle();
    expect(s.acks.map((a) => a.committed_seq)).to.deep.equal(['100', '200']);
    expect(first.order!.ticket.isDone && second.order!.ticket.isDone).to.equal(true);
    await clock.tickAsync(10);
    expect(sink.written.map((w) => w.events)).to.deep.equal([100, 100, 50]);
    sink.written[2]!.resolve();
    await settle();
    expect(s.acks.map((a) => a.committed_seq)).to.deep.equal(['100', '200', '250']);
  });

  it('records in each window the seq its stream reached in earlier windows', async () => {
    const p = pipeline({ INGEST_BATCH_MAX_ROWS: '100' });
    const stream = await p.openStream('src', new RecordingSink());
    const seen: string[] = [];
    sink.write = (window) => {
      for (const c of window.contributions) seen.push(`${c.prevSeq}..${c.minSeq}-${c.maxSeq}`);
      return new Promise(() => undefined);
    };
    p.submit(stream, { events: fills(1, 150) }, 0);
    expect(seen).to.deep.equal(['0..1-100', '100..101-150'].slice(0, seen.length));
    expect(seen).to.have.length(1);
    await clock.tickAsync(10);
    expect(seen).to.deep.equal(['0..1-100', '100..101-150']);
  });

  it('closes on bytes', async () => {
    const p = pipeline({ INGEST_BATCH_MAX_BYTES: '1024' });
    const stream = await p.openStream('src', new RecordingSink());
    p.submit(stream, { events: fills(1, 40) }, 0);
    expect(sink.written).to.have.length(1);
    expect(sink.written[0]!.events).to.be.below(40);
  });

  it('sends the Rejects of a flush before its Ack and counts them as handled', async () => {
    const p = pipeline();
    const s = new RecordingSink();
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: [fill(1), fill(2, { qty: '0' }), { seq: '0', payload: 'fill', fill: fill(3).fill }, fill(4, { fill_id: '' }), fill(5)] }, 0);
    await clock.tickAsync(10);
    sink.written[0]!.resolve();
    await settle();
    expect(s.log).to.deep.equal(['reject:2', 'reject:0', 'reject:4', 'ack:5']);
    expect(s.rejects.map((r) => r.code)).to.deep.equal([RejectCode.REJECT_CODE_OUT_OF_RANGE, RejectCode.REJECT_CODE_INVALID_SEQ, RejectCode.REJECT_CODE_MISSING_FIELD]);
    expect(s.acks[0]).to.deep.equal({ committed_seq: '5', stored: 2, rejected: 3, duplicates: 0 });
  });

  it('acks a duplicates-only batch at once when nothing is pending, else with the next Ack', async () => {
    const p = pipeline();
    const s = new RecordingSink();
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: fills(1, 5) }, 0);
    p.submit(stream, { events: fills(4, 5) }, 0);
    expect(s.acks).to.have.length(0);
    await clock.tickAsync(10);
    sink.written[0]!.resolve();
    await settle();
    expect(s.acks).to.deep.equal([{ committed_seq: '5', stored: 5, rejected: 0, duplicates: 2 }]);
    p.submit(stream, { events: fills(1, 3) }, 0);
    expect(s.acks[1]).to.deep.equal({ committed_seq: '5', stored: 0, rejected: 0, duplicates: 3 });
    expect(sink.written).to.have.length(1);
  });

  it('pauses a stream past its bound and resumes it once commits bring it back under', async () => {
    const p = pipeline({ INGEST_STREAM_MAX_BUFFERED: '100', INGEST_MAX_BUFFERED: '1000', INGEST_BATCH_MAX_ROWS: '60' });
    const s = new RecordingSink();
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: fills(1, 50) }, 0);
    expect(s.paused).to.equal(false);
    p.submit(stream, { events: fills(51, 100) }, 0);
    expect(s.paused).to.equal(true);
    expect(p.bufferedEvents).to.equal(100);
    sink.written[0]!.resolve();
    await settle();
    expect(s.paused).to.equal(false);
    expect(p.bufferedEvents).to.equal(40);
  });

  it('pauses on the overall bound too', async () => {
    const p = pipeline({ INGEST_STREAM_MAX_BUFFERED: '100', INGEST_MAX_BUFFERED: '150', INGEST_BATCH_MAX_ROWS: '150' });
    const a = new RecordingSink();
    const b = new RecordingSink();
    const sa = await p.openStream('a', a);
    const sb = await p.openStream('b', b);
    p.submit(sa, { events: fills(1, 80) }, 0);
    p.submit(sb, { events: fills(1, 80) }, 0);
    expect([a.paused, b.paused]).to.deep.equal([false, true]);
  });

  it('a second Hello fences the first stream: its unflushed events are dropped and Welcome waits for its in-flight flush', async () => {
    const p = pipeline({ INGEST_BATCH_MAX_ROWS: '10' });
    const first = new RecordingSink();
    const s1 = await p.openStream('src', first);
    p.submit(s1, { events: fills(1, 15) }, 0); // 10 in flight, 5 buffered
    expect(sink.written).to.have.length(1);
    let opened = false;
    const second = new RecordingSink();
    const opening = p.openStream('src', second).then((s) => {
      opened = true;
      return s;
    });
    await settle();
    expect(first.fencedCalls).to.equal(1);
    expect(opened).to.equal(false);
    sink.written[0]!.resolve();
    await settle();
    const s2 = await opening;
    expect(s2.epoch).to.equal('1');
    // The fenced stream gets no ack; its buffered window reaches the sink marked FENCED (the writer drops it).
    expect(first.acks).to.have.length(0);
    await clock.tickAsync(10);
    expect(sink.written[1]!.byStream.get('src')!.state).to.equal('FENCED');
    sink.written[1]!.resolve();
    await settle();
    expect(p.bufferedEvents).to.equal(0);
  });

  it('a stream the flush finds fenced elsewhere is told so and gets no ack', async () => {
    const p = pipeline();
    const s = new RecordingSink();
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: fills(1, 3) }, 0);
    await clock.tickAsync(10);
    const written = sink.written[0]!;
    written.resolve({ fenced: new Set([(p as unknown as { inFlight: Array<{ window: BatchWindow }> }).inFlight[0]!.window.contributions[0]!]) });
    await settle();
    expect(s.fencedCalls).to.equal(1);
    expect(s.acks).to.have.length(0);
    expect(stream.state).to.equal('FENCED');
  });

  it('ends the streams of a window the writer gave up on unexpectedly, so no later window commits over the hole', async () => {
    const p = pipeline({ INGEST_BATCH_MAX_ROWS: '10' });
    const s = new RecordingSink();
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: fills(1, 20) }, 0);
    expect(sink.written).to.have.length(2);
    // The second window is still in flight when the first comes back uncommitted.
    sink.written[0]!.resolve({ committed: false });
    await settle();
    expect(s.fencedCalls).to.equal(1);
    expect(stream.state).to.equal('FENCED');
    sink.written[1]!.resolve();
    await settle();
    expect(s.acks).to.have.length(0);
  });

  it('calls afterCommit with what the flush touched before acking', async () => {
    const changes: ChangeSet[] = [];
    const s = new RecordingSink();
    const acksAtHook: number[] = [];
    const p = new IngestPipeline({
      config: config(),
      sink,
      openSource,
      logger: silentLogger,
      hooks: {
        afterCommit: (c) => {
          changes.push(c);
          acksAtHook.push(s.acks.length);
        },
      },
    });
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: [fill(1, { order_id: 'o1', account_id: 'a1', symbol: 'X' }), fill(2, { order_id: 'o2', account_id: 'a1', symbol: 'Y' })] }, 0);
    await clock.tickAsync(10);
    sink.written[0]!.resolve();
    await settle();
    expect(changes).to.have.length(1);
    expect(acksAtHook).to.deep.equal([0]);
    expect(s.acks).to.have.length(1);
    const ids = changes[0]!.ids!;
    expect([...ids.orderIds]).to.deep.equal(['o1', 'o2']);
    expect([...ids.accountIds]).to.deep.equal(['a1']);
    expect([...ids.symbolsByAccount.get('a1')!]).to.deep.equal(['X', 'Y']);
    expect(changes[0]!.tagHashes).to.include.members([orderTagHash('o1'), orderTagHash('o2'), accountTagHash('a1'), positionTagHash('a1', 'X'), positionTagHash('a1', 'Y')]);
  });

  it('close() flushes what is buffered, then abandons flushes still failing at the deadline; close is idempotent', async () => {
    const p = pipeline();
    const s = new RecordingSink();
    const stream = await p.openStream('src', s);
    p.submit(stream, { events: fills(1, 3) }, 0);
    const closing = p.close(1_000);
    expect(p.close(1_000)).to.equal(closing);
    expect(p.state).to.equal('DRAINING');
    expect(sink.written).to.have.length(1);
    // The sink never commits: at the deadline the flush is aborted.
    await clock.tickAsync(1_000);
    expect(sink.written[0]!.signal.aborted).to.equal(true);
    sink.written[0]!.resolve({ committed: false });
    await closing;
    expect(p.state).to.equal('CLOSED');
    expect(s.acks).to.have.length(0);
    expect(() => p.submit(stream, { events: fills(4, 4) }, 0)).to.throw(/shutting down/);
    await p.openStream('other', new RecordingSink()).then(
      () => expect.fail('opened after close'),
      (err: Error) => expect(err.message).to.match(/shutting down/),
    );
  });
});
