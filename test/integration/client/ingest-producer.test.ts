import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import {
  ClientAbortedError,
  createOrderFlowClient,
  EventRejectedError,
  FencedError,
  InvalidEventError,
  InvalidSequenceError,
  OrderFlowClientError,
  ProducerClosedError,
  RejectCode,
  type EventOutcome,
  type IngestProducer,
  type OrderFlowClient,
  type ProducerWarning,
} from '../../../src/client';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';
import { fillEvent, mixedEvent } from '../../helpers/client-events';
import { FakeIngestServer } from '../../helpers/fake-ingest-server';

const FAST_RECONNECT = { initialDelayMs: 10, maxDelayMs: 100 };

/** Sends `count` events (awaiting each send, as a caller honouring backpressure does) and returns their ack promises. */
async function sendMany(producer: IngestProducer, count: number, from = 1, make = mixedEvent): Promise<Promise<EventOutcome>[]> {
  const acks: Promise<EventOutcome>[] = [];
  for (let i = from; i < from + count; i++) acks.push((await producer.send(make(i))).acked);
  return acks;
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Asserts that the fake holds exactly seqs 1..count of `sourceId`, each once, with nothing dropped as a duplicate. */
function expectExactlyOnce(fake: FakeIngestServer, sourceId: string, count: number): void {
  const source = fake.source(sourceId);
  expect(source.doubleStores, 'events stored twice').to.equal(0);
  expect(source.stored.size + source.quarantined.size, 'events held').to.equal(count);
  for (let seq = 1n; seq <= BigInt(count); seq++) {
    if (!source.stored.has(seq) && !source.quarantined.has(seq)) throw new Error(`seq ${seq} is missing`);
  }
}

describe('client/IngestProducer against the fake server (integration, real gRPC)', function () {
  this.timeout(60_000);
  let fake: FakeIngestServer;
  let client: OrderFlowClient;
  let others: OrderFlowClient[];

  beforeEach(async () => {
    fake = new FakeIngestServer();
    await fake.start();
    client = createOrderFlowClient({ address: fake.address });
    others = [];
  });
  afterEach(async () => {
    fake.stall(false);
    await Promise.all([client, ...others].map((c) => Promise.race([c.close(), new Promise((r) => setTimeout(r, 3_000))])));
    await fake.stop();
  });

  it('batches events, resolves each receipt as stored when the covering ack arrives, and counts them', async () => {
    const producer = await client.openIngest({ sourceId: 'basic', maxBatchEvents: 100 });
    const outcomes = await Promise.all(await sendMany(producer, 5_000));
    expect(outcomes.map((o) => o.status)).to.deep.equal(new Array(5_000).fill('stored'));
    expect(outcomes.map((o) => o.seq)).to.deep.equal(Array.from({ length: 5_000 }, (_, i) => BigInt(i + 1)));
    expectExactlyOnce(fake, 'basic', 5_000);
    const stats = producer.stats();
    expect(stats).to.include({ eventsAccepted: 5_000, eventsSent: 5_000, eventsResent: 0, eventsStored: 5_000, eventsAcked: 5_000, windowEvents: 0, reconnects: 0, serverDuplicates: 0, serverStored: 5_000 });
    expect(stats.batchesSent).to.be.within(50, fake.counts.batchesReceived);
    expect(fake.counts.batchesReceived).to.equal(stats.batchesSent);
    expect(stats.lastCommittedSeq).to.equal(5_000n);
  });

  it('continues the seq above Welcome.last_committed_seq', async () => {
    fake.source('resume').mark = 41n;
    const producer = await client.openIngest({ sourceId: 'resume' });
    expect(producer.lastCommittedSeq).to.equal(41n);
    const receipt = await producer.send(fillEvent(1));
    expect(receipt.seq).to.equal(42n);
    expect(await receipt.acked).to.deep.equal({ seq: 42n, status: 'stored' });
  });

  it('lingerMs holds a partial batch back until the linger passes', async () => {
    const producer = await client.openIngest({ sourceId: 'linger', lingerMs: 1_500, maxBatchEvents: 1_000 });
    const acks = await sendMany(producer, 3);
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.counts.eventsReceived).to.equal(0);
    await Promise.all(acks);
    expect(fake.counts.batchesReceived).to.equal(1);
    expect(fake.counts.eventsReceived).to.equal(3);
  });

  it('caller seqs: gaps are fine, a non-increasing seq is refused, a replay at or below the mark settles as duplicate without being sent', async () => {
    fake.source('seqs').mark = 100n;
    const producer = await client.openIngest({ sourceId: 'seqs' });
    const replay = await producer.send({ ...fillEvent(1), seq: 100n });
    expect(await replay.acked).to.deep.equal({ seq: 100n, status: 'duplicate' });
    const a = await producer.send({ ...fillEvent(2), seq: '105' });
    const b = await producer.send({ ...fillEvent(3), seq: 110n });
    let refused: unknown;
    await producer.send({ ...fillEvent(4), seq: 110n }).catch((e: unknown) => (refused = e));
    expect(refused).to.be.instanceOf(InvalidSequenceError).and.include({ seq: 110n, lastSeq: 110n });
    const c = await producer.send(fillEvent(5)); // auto seq after caller seqs
    expect(c.seq).to.equal(111n);
    expect((await Promise.all([a.acked, b.acked, c.acked])).map((o) => o.status)).to.deep.equal(['stored', 'stored', 'stored']);
    expect([...fake.source('seqs').stored.keys()]).to.deep.equal([105n, 110n, 111n]);
    expect(fake.counts.eventsReceived).to.equal(3);
    expect(producer.stats().eventsDuplicate).to.equal(1);
  });

  it('refuses malformed events before they take a seq', async () => {
    const producer = await client.openIngest({ sourceId: 'malformed' });
    const bad = [{}, { ...fillEvent(1), ...mixedEvent(3) }, { fill: { ...fillEvent(1).fill!, ts_ns: 1.7e18 as unknown as string } }, { ...fillEvent(1), seq: -1n }, { ...fillEvent(1), seq: 'x' }];
    for (const event of bad) {
      const err = await producer.send(event as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(InvalidEventError);
      expect((err as InvalidEventError).code).to.equal(grpc.status.INVALID_ARGUMENT);
    }
    expect((await producer.send(fillEvent(1))).seq).to.equal(1n);
  });

  it('maps every Reject to an EventRejectedError with its code and reason; the rest of the batch is stored', async () => {
    fake.rejectIf = (e) => (e.fill && e.fill.qty === '0' ? { code: RejectCode.REJECT_CODE_OUT_OF_RANGE, reason: 'qty must be > 0' } : undefined);
    const rejectedSeen: EventRejectedError[] = [];
    const producer = await client.openIngest({ sourceId: 'rejects', onEventRejected: (e) => rejectedSeen.push(e) });
    const acks: Promise<EventOutcome>[] = [];
    for (let i = 1; i <= 100; i++) {
      const event = fillEvent(i);
      if (i % 10 === 0) event.fill!.qty = '0';
      acks.push((await producer.send(event)).acked);
    }
    const results = await Promise.allSettled(acks);
    const rejected = results.flatMap((r, i) => (r.status === 'rejected' ? [{ seq: i + 1, err: r.reason as EventRejectedError }] : []));
    expect(rejected.map((r) => r.seq)).to.deep.equal([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    for (const { seq, err } of rejected) {
      expect(err).to.be.instanceOf(EventRejectedError);
      expect(err).to.include({ seq: BigInt(seq), rejectCode: RejectCode.REJECT_CODE_OUT_OF_RANGE, rejectCodeName: 'REJECT_CODE_OUT_OF_RANGE', reason: 'qty must be > 0', sourceId: 'rejects', code: grpc.status.INVALID_ARGUMENT });
      expect(err.message).to.include('qty must be > 0').and.include(`Event ${seq}`);
    }
    expect(rejectedSeen.map((e) => e.seq)).to.deep.equal(rejected.map((r) => BigInt(r.seq)));
    expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(90);
    expect(fake.source('rejects').stored.size).to.equal(90);
    expect(fake.source('rejects').quarantined.size).to.equal(10);
    expect(producer.stats()).to.include({ eventsRejected: 10, eventsStored: 90, serverRejected: 10 });
  });

  it('abrupt drops (uncommitted events lost by the server): reconnects, resends exactly the unacked events, stores each once', async () => {
    fake.ackDelayMs = 2;
    fake.dropStreamsAfter(1_500, 'abrupt', true);
    const producer = await client.openIngest({ sourceId: 'abrupt', reconnect: FAST_RECONNECT, maxWindowEvents: 2_000, maxBatchEvents: 200 });
    const outcomes = await Promise.all(await sendMany(producer, 20_000));
    expectExactlyOnce(fake, 'abrupt', 20_000);
    const stats = producer.stats();
    expect(fake.counts.drops).to.be.greaterThan(5);
    expect(stats.reconnects).to.equal(fake.counts.drops);
    expect(stats.reconnectAttempts).to.be.at.least(stats.reconnects);
    expect(stats.eventsResent).to.be.greaterThan(0);
    // Each resend was above the source's committed mark: the server never saw a duplicate.
    expect(fake.source('abrupt').duplicates).to.equal(0);
    expect(stats.serverDuplicates).to.equal(0);
    expect(stats.eventsSent).to.equal(20_000);
    expect(outcomes.every((o) => o.status === 'stored' || o.status === 'committed')).to.equal(true);
    expect(stats.eventsStored + stats.eventsCommitted).to.equal(20_000);
  });

  it('graceful drops (final acks, then UNAVAILABLE): nothing the server committed is resent', async () => {
    fake.ackDelayMs = 5;
    fake.dropStreamsAfter(2_000, 'graceful', true);
    const producer = await client.openIngest({ sourceId: 'graceful', reconnect: FAST_RECONNECT });
    await Promise.all(await sendMany(producer, 10_000));
    expectExactlyOnce(fake, 'graceful', 10_000);
    expect(fake.counts.drops).to.be.greaterThan(2);
    expect(fake.source('graceful').duplicates).to.equal(0);
    // Resent were only events the server never read (written after its drop
    // point): every event reached the server exactly once.
    expect(producer.stats().eventsResent).to.be.greaterThan(0);
    expect(fake.counts.eventsReceived).to.equal(10_000);
  });

  it('a commit whose ack was lost: the Welcome settles the events as committed, and a Reject seen before the drop still surfaces', async () => {
    fake.stall(true);
    fake.rejectIf = (e) => (e.seq === '3' ? { code: RejectCode.REJECT_CODE_INVALID_FIELD, reason: 'symbol contains a control character' } : undefined);
    const producer = await client.openIngest({ sourceId: 'lost-ack', reconnect: FAST_RECONNECT });
    const acks = await sendMany(producer, 5, 1, fillEvent);
    await waitFor('the reject', () => fake.counts.eventsReceived === 5);
    await new Promise((r) => setTimeout(r, 50));
    // The server commits, then the connection dies before the ack goes out.
    fake.commitSilentlyAndDrop('lost-ack');
    const results = await Promise.allSettled(acks);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.status : (r.reason as Error).constructor.name))).to.deep.equal(['committed', 'committed', 'EventRejectedError', 'committed', 'committed']);
    expect(fake.source('lost-ack').duplicates).to.equal(0);
    expect(producer.stats()).to.include({ eventsResent: 0, eventsCommitted: 4, eventsRejected: 1, reconnects: 1 });
  });

  it('server restarts (crash, down for a while) mid-stream: resumes from Welcome, nothing lost or doubled', async () => {
    fake.ackDelayMs = 3;
    const producer = await client.openIngest({ sourceId: 'restart', reconnect: FAST_RECONNECT, maxWindowEvents: 3_000 });
    const sending = sendMany(producer, 15_000);
    for (const at of [3_000, 9_000]) {
      await waitFor(`event ${at}`, () => fake.counts.eventsReceived >= at);
      await fake.restart(300);
    }
    await Promise.all(await sending);
    expectExactlyOnce(fake, 'restart', 15_000);
    expect(fake.source('restart').duplicates).to.equal(0);
    expect(producer.stats().reconnects).to.be.at.least(2);
    expect(producer.stats().eventsResent).to.be.greaterThan(0);
  });

  it('a newer Hello fences the producer: pending sends reject with a FencedError naming the fencing, and it does not retry', async () => {
    fake.stall(true);
    const producer = await client.openIngest({ sourceId: 'fenced', reconnect: FAST_RECONNECT });
    const acks = await sendMany(producer, 50);
    await waitFor('events at the server', () => fake.counts.eventsReceived === 50);
    const other = createOrderFlowClient({ address: fake.address });
    others.push(other);
    const newer = await other.openIngest({ sourceId: 'fenced' });
    const results = await Promise.allSettled(acks);
    for (const r of results) {
      expect(r.status).to.equal('rejected');
      const err = (r as PromiseRejectedResult).reason as FencedError;
      expect(err).to.be.instanceOf(FencedError).and.include({ sourceId: 'fenced', reason: 'newer-stream', code: grpc.status.ABORTED });
      expect(err.message).to.match(/^Fenced: a newer ingest stream for source "fenced" took over/);
    }
    expect(producer.state).to.equal('FENCED');
    const late = await producer.send(fillEvent(99)).catch((e: unknown) => e);
    expect(late).to.be.instanceOf(FencedError);
    await producer.flush().then(
      () => expect.fail('flush must reject'),
      (e: unknown) => expect(e).to.be.instanceOf(FencedError),
    );
    const hellos = fake.counts.hellos;
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.counts.hellos, 'no reconnect after a fence').to.equal(hellos);
    expect(producer.stats()).to.include({ eventsFailed: 50, state: 'FENCED' });
    // The fenced stream's uncommitted events were never committed; the newer producer starts above nothing.
    fake.stall(false);
    expect(newer.lastCommittedSeq).to.equal(0n);
    expect(await (await newer.send(fillEvent(1))).acked).to.deep.equal({ seq: 1n, status: 'stored' });
  });

  it('a server-side fence (ABORTED) is surfaced the same way', async () => {
    fake.stall(true);
    const producer = await client.openIngest({ sourceId: 'fenced-2' });
    const acks = await sendMany(producer, 3);
    await waitFor('events at the server', () => fake.counts.eventsReceived === 3);
    fake.fence('fenced-2');
    for (const r of await Promise.allSettled(acks)) expect((r as PromiseRejectedResult).reason).to.be.instanceOf(FencedError);
  });

  it('superseded: another writer advanced the source while the producer was away, so it stops instead of resuming', async () => {
    const producer = await client.openIngest({ sourceId: 'split', reconnect: FAST_RECONNECT });
    await Promise.all(await sendMany(producer, 10));
    fake.dropStreamsAfter(1, 'abrupt');
    const lost = (await producer.send(fillEvent(11))).acked;
    const port = fake.port;
    await fake.stop(); // the producer keeps retrying in vain
    // Meanwhile a second writer uses the same source through another instance on the same store.
    const elsewhere = new FakeIngestServer({ sources: fake.sources });
    await elsewhere.start();
    const other = createOrderFlowClient({ address: elsewhere.address });
    others.push(other);
    const intruder = await other.openIngest({ sourceId: 'split' });
    await Promise.all(await sendMany(intruder, 5, 100));
    await intruder.close();
    await elsewhere.stop();
    await fake.start(port);
    const err = await lost.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(FencedError).and.include({ reason: 'superseded', sourceId: 'split' });
    expect((err as FencedError).message).to.include('another writer advanced source "split"');
    expect(producer.state).to.equal('FENCED');
    expect(producer.stats().reconnectAttempts).to.be.greaterThan(0);
    expect([...fake.source('split').stored.keys()]).to.deep.equal(Array.from({ length: 15 }, (_, i) => BigInt(i + 1)));
  });

  it('backpressure: with commits stalled, send stops resolving once the window is full; memory stays bounded; it resumes after', async () => {
    fake.maxBufferedPerStream = 1_000;
    const producer = await client.openIngest({ sourceId: 'backpressure', maxWindowEvents: 2_000, maxBatchEvents: 100 });
    fake.stall(true);
    let resolvedSends = 0;
    const acks: Promise<EventOutcome>[] = [];
    const sender = (async () => {
      for (let i = 1; i <= 6_000; i++) {
        acks.push((await producer.send(fillEvent(i))).acked);
        resolvedSends++;
      }
    })();
    await waitFor('a full window', () => producer.stats().windowEvents === 2_000);
    const heapBefore = process.memoryUsage().heapUsed;
    const stuckAt = resolvedSends;
    await new Promise((r) => setTimeout(r, 500));
    expect(resolvedSends, 'send stopped resolving').to.equal(stuckAt);
    expect(stuckAt).to.equal(2_000);
    const stats = producer.stats();
    expect(stats.windowEvents).to.equal(2_000);
    expect(stats.waitingSends).to.equal(1);
    expect(stats.connection).to.equal('READY');
    expect(fake.counts.maxBufferedSeen, 'the server read no more than its bound (plus one batch)').to.be.at.most(1_100);
    expect(process.memoryUsage().heapUsed - heapBefore).to.be.below(20 * 1024 * 1024);
    fake.stall(false);
    await sender;
    await Promise.all(acks);
    expectExactlyOnce(fake, 'backpressure', 6_000);
    expect(producer.stats().sendWaits).to.be.greaterThan(0);
    expect(fake.counts.pauses).to.be.greaterThan(0);
  });

  it('a send waiting for room can be aborted by its signal; the others go on', async () => {
    fake.stall(true);
    const producer = await client.openIngest({ sourceId: 'abort-send', maxWindowEvents: 2 });
    const first = await sendMany(producer, 2);
    const controller = new AbortController();
    const waiting = producer.send(fillEvent(3), { signal: controller.signal });
    const behind = producer.send(fillEvent(4));
    controller.abort();
    expect(await waiting.catch((e: unknown) => e)).to.be.instanceOf(ClientAbortedError);
    fake.stall(false);
    const receipt = await behind;
    expect(receipt.seq).to.equal(4n);
    await Promise.all([...first, receipt.acked]);
    expect([...fake.source('abort-send').stored.keys()]).to.deep.equal([1n, 2n, 4n]);
    expect(producer.stats()).to.include({ eventsAccepted: 4, eventsStored: 3, eventsFailed: 1 });
  });

  it('flush() waits for every event sent so far; close() flushes, ends the stream and refuses later sends; close is idempotent', async () => {
    fake.ackDelayMs = 30;
    const producer = await client.openIngest({ sourceId: 'close' });
    const acks = await sendMany(producer, 500);
    let settled = 0;
    for (const a of acks) void a.then(() => settled++);
    await producer.flush();
    expect(settled).to.equal(500);
    const more = await sendMany(producer, 100, 501);
    const closing = producer.close();
    expect(producer.state).to.equal('DRAINING');
    expect(await producer.send(fillEvent(700)).catch((e: unknown) => e)).to.be.instanceOf(ProducerClosedError);
    await Promise.all([closing, producer.close()]);
    expect(producer.state).to.equal('CLOSED');
    expect((await Promise.all(more)).every((o) => o.status === 'stored')).to.equal(true);
    await waitFor('the server to see the stream end', () => fake.openStreams === 0);
    expect(await producer.send(fillEvent(701)).catch((e: unknown) => e)).to.be.instanceOf(ProducerClosedError);
    expectExactlyOnce(fake, 'close', 600);
  });

  it('close() with the server gone gives up after closeTimeoutMs: it rejects and so do the pending events', async () => {
    const producer = await client.openIngest({ sourceId: 'close-timeout', closeTimeoutMs: 300, reconnect: FAST_RECONNECT });
    fake.stall(true);
    const acks = await sendMany(producer, 10);
    await fake.stop();
    const started = Date.now();
    const err = await producer.close().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ProducerClosedError);
    expect(Date.now() - started).to.be.at.least(250);
    for (const r of await Promise.allSettled(acks)) expect((r as PromiseRejectedResult).reason).to.be.instanceOf(ProducerClosedError);
    expect(producer.state).to.equal('CLOSED');
    await fake.start(); // for afterEach
  });

  it('destroy() rejects pending events at once', async () => {
    fake.stall(true);
    const producer = await client.openIngest({ sourceId: 'destroy' });
    const acks = await sendMany(producer, 10);
    await producer.destroy();
    await producer.destroy();
    for (const r of await Promise.allSettled(acks)) expect((r as PromiseRejectedResult).reason).to.be.instanceOf(ProducerClosedError);
    expect(producer.stats()).to.include({ state: 'CLOSED', eventsFailed: 10, windowEvents: 0 });
  });

  it('openIngest keeps trying while the server is down, and its signal aborts the wait', async () => {
    const port = fake.port;
    await fake.stop();
    const opening = client.openIngest({ sourceId: 'late', reconnect: FAST_RECONNECT });
    await new Promise((r) => setTimeout(r, 300));
    await fake.start(port);
    const producer = await opening;
    expect(producer.state).to.equal('OPEN');
    expect(producer.stats()).to.include({ reconnects: 0 });
    expect(producer.stats().reconnectAttempts).to.be.greaterThan(0);

    await fake.stop();
    const controller = new AbortController();
    const aborted = client.openIngest({ sourceId: 'never', signal: controller.signal, reconnect: FAST_RECONNECT });
    setTimeout(() => controller.abort(), 200);
    expect(await aborted.catch((e: unknown) => e)).to.be.instanceOf(ClientAbortedError);
    await fake.start(port);
  });

  it('a fatal status (UNIMPLEMENTED) fails openIngest at once, without retrying', async () => {
    const bare = new grpc.Server();
    bare.addService(orderFlowServiceDefinition(), {});
    const port = await new Promise<number>((resolve, reject) => bare.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const bareClient = createOrderFlowClient({ address: `127.0.0.1:${port}` });
    try {
      const err = await bareClient.openIngest({ sourceId: 'x', reconnect: FAST_RECONNECT }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OrderFlowClientError);
      expect((err as OrderFlowClientError).code).to.equal(grpc.status.UNIMPLEMENTED);
    } finally {
      await bareClient.close();
      bare.forceShutdown();
    }
  });

  it('allows one producer per source per client and checks its options', async () => {
    const producer = await client.openIngest({ sourceId: 'single' });
    expect(await client.openIngest({ sourceId: 'single' }).catch((e: unknown) => (e as OrderFlowClientError).code)).to.equal(grpc.status.FAILED_PRECONDITION);
    await producer.close();
    const again = await client.openIngest({ sourceId: 'single' });
    expect(again.state).to.equal('OPEN');
    const err = await client.openIngest({ sourceId: '', maxWindowEvents: 0, lingerMs: -1 }).catch((e: unknown) => e);
    expect((err as Error).message).to.include('sourceId').and.include('maxWindowEvents').and.include('lingerMs');
  });

  it('client.close() closes its producers after flushing them', async () => {
    fake.ackDelayMs = 20;
    const producer = await client.openIngest({ sourceId: 'client-close' });
    const acks = await sendMany(producer, 300);
    await client.close();
    expect(producer.state).to.equal('CLOSED');
    expect((await Promise.all(acks)).length).to.equal(300);
    expect(client.state).to.equal('CLOSED');
  });

  it('warns when the server reports duplicates it should not have seen', async () => {
    const warnings: ProducerWarning[] = [];
    const producer = await client.openIngest({ sourceId: 'dups', onWarning: (w) => warnings.push(w) });
    fake.stall(true);
    const acks = await sendMany(producer, 3);
    await waitFor('events at the server', () => fake.counts.eventsReceived === 3);
    // Another writer commits the same seqs behind our back: the ack then counts duplicates.
    fake.source('dups').mark = 2n;
    fake.stall(false);
    const outcomes = await Promise.all(acks);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['committed', 'committed', 'committed']);
    expect(warnings.map((w) => w.kind)).to.deep.equal(['ambiguous-ack']);
  });
});
