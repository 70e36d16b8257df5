import { expect } from 'chai';
import path from 'node:path';
import { ChildServer } from '../../../scripts/bench/lib/child';
import { createIngestDriver } from '../../../scripts/bench/lib/ingest-driver';
import { BatchFactory, runOffered, runSaturation } from '../../../scripts/bench/lib/ingest-load';
import { planFor } from '../../../scripts/bench/lib/args';
import { measureUnary, probeUnary, UnaryLoadClient } from '../../../scripts/bench/lib/unary-bench';
import { ScenarioUnavailableError } from '../../../scripts/bench/lib/unavailable';
import { FLOOR_ORDER } from '../../../scripts/bench/lib/floor-server';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';
import { decodeIngestRequest } from '../../../src/ingest/wire-format';

/** The stand-in service (compiled next to this file). */
const FAKE = path.resolve(__dirname, 'fixtures/fake-orderflow.js');

describe('bench/harness against a stand-in service (loopback, no database)', function () {
  this.timeout(30_000);

  describe('when the RPCs are implemented', () => {
    let server: ChildServer;
    before(async () => {
      server = await ChildServer.start('fake', FAKE, {});
    });
    after(async () => {
      await server?.stop();
    });

    it('drives Ingest at saturation and counts only acked events', async () => {
      const r = await runSaturation({ server, postmasterPid: process.pid, client: 'raw-stub', streams: 2, eventsPerBatch: 100, warmupMs: 100, windowMs: 300, seed: 1 });
      expect(r.streams).to.equal(2);
      // Closing waits for the stand-in to ack everything sent; what fell in the window is a subset.
      expect(r.sentEvents).to.be.greaterThan(0);
      expect(r.totalAckedEvents).to.equal(r.sentEvents);
      expect(r.ackedEvents).to.be.at.most(r.totalAckedEvents);
      expect(r.ackedEvents % 100).to.equal(0);
      expect(r.serverCpuMicros).to.be.at.least(0);
      expect(r.peakRssBytes).to.be.greaterThan(0);
      expect(r.rejects).to.equal(0);
    });

    it('drives Ingest at a fixed offered rate and measures each batch until the Ack that covers it', async () => {
      const r = await runOffered({ server, client: 'raw-stub', streams: 2, ratePerSec: 20_000, eventsPerBatch: 100, warmupMs: 100, windowMs: 300, seed: 2 });
      expect(r.batches).to.be.greaterThan(0);
      expect(r.errors).to.equal(0);
      expect(r.timedOutBatches).to.equal(0);
      expect(r.summary.count).to.equal(r.batches);
      expect(r.summary.p50Ms).to.be.at.most(r.summary.p99Ms);
    });

    it('measures a unary RPC closed and open loop', async () => {
      const client = new UnaryLoadClient(server.port);
      try {
        const plan = { ...planFor({ quick: true }), readClosedWarmupMs: 50, readClosedWindowMs: 1_000, readOpenWarmupMs: 50, readOpenWindowMs: 200, readOpenRate: 200, readConcurrency: 4 };
        const m = await measureUnary(server, undefined, plan, () => client.call('GetOrder', { order_id: 'x' }));
        expect(m.closed.completed).to.be.greaterThan(0);
        expect(m.open.completed).to.be.greaterThan(0);
        expect(m.closed.errors + m.open.errors).to.equal(0);
      } finally {
        client.close();
      }
    });

    it('leaves responses undecoded: a call resolves with the encoded response size', async () => {
      const client = new UnaryLoadClient(server.port);
      try {
        const size = orderFlowServiceDefinition().GetOrder.responseSerialize(FLOOR_ORDER).length;
        expect(size).to.be.greaterThan(50);
        expect(await client.call('GetOrder', { order_id: 'x' })).to.equal(size);
      } finally {
        client.close();
      }
    });

    it('builds batches with consecutive seqs and unique fill ids', () => {
      const f = new BatchFactory('src-1', 1, 10);
      const a = f.next(3);
      const b = f.next(2);
      expect(a.events.map((e) => e.seq)).to.deep.equal(['10', '11', '12']);
      expect(b.lastSeq).to.equal(14);
      expect(new Set([...a.events, ...b.events].map((e) => e.fill!.fill_id)).size).to.equal(5);
    });

    it('encodes ahead exactly the batches it builds as objects (decoded by the service decoder)', () => {
      const objects = new BatchFactory('src-enc', 7, 120);
      const encoded = new BatchFactory('src-enc', 7, 120);
      for (const size of [1, 3, 250]) {
        const want = objects.next(size);
        const got = encoded.nextEncoded(size);
        expect(got.lastSeq).to.equal(want.lastSeq);
        const decoded = decodeIngestRequest(got.request);
        expect(decoded.batch!.events.map((e) => ({ seq: e.seq, fill: { ...e.fill, side: Number(e.fill!.side) } }))).to.deep.equal(
          want.events.map((e) => ({ seq: e.seq, fill: { ...e.fill, side: Number(e.fill!.side) } })),
        );
      }
    });

    it('drives Ingest with pre-encoded requests', async () => {
      const r = await runSaturation({ server, postmasterPid: process.pid, client: 'pre-encoded', streams: 2, eventsPerBatch: 100, warmupMs: 100, windowMs: 300, seed: 3 });
      expect(r.sentEvents).to.be.greaterThan(0);
      expect(r.totalAckedEvents).to.equal(r.sentEvents);
      expect(r.rejects).to.equal(0);
    });
  });

  describe('when the build answers UNIMPLEMENTED', () => {
    let server: ChildServer;
    let silent: ChildServer;
    before(async () => {
      [server, silent] = await Promise.all([ChildServer.start('fake-unimplemented', FAKE, { FAKE_UNIMPLEMENTED: '1' }), ChildServer.start('fake-silent', FAKE, { FAKE_UNIMPLEMENTED: 'silent' })]);
    });
    after(async () => {
      await Promise.all([server?.stop(), silent?.stop()]);
    });

    it('reports Ingest as not available instead of failing', async () => {
      const driver = createIngestDriver('raw-stub', server.port);
      try {
        const err = await driver.open('src-1').then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(ScenarioUnavailableError);
        expect((err as ScenarioUnavailableError).reason).to.contain('Ingest');
      } finally {
        driver.close();
      }
    });

    it('reports an Ingest that never answers Hello as not available, saying so', async () => {
      const driver = createIngestDriver('raw-stub', silent.port, { welcomeTimeoutMs: 300 });
      try {
        const err = await driver.open('src-1').then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(ScenarioUnavailableError);
        expect((err as ScenarioUnavailableError).reason).to.contain('no Welcome within 300 ms');
      } finally {
        driver.close();
      }
    });

    it('reports a unary read as not available instead of failing', async () => {
      const client = new UnaryLoadClient(server.port);
      try {
        const err = await probeUnary(client, 'GetOrder', { order_id: 'x' }).then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(ScenarioUnavailableError);
      } finally {
        client.close();
      }
    });
  });
});
