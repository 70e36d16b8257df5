import { expect } from 'chai';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createOrderFlowClient, SpoolError, type EventOutcome, type OrderFlowClient } from '../../../src/client';
import { startChildProducer } from '../../helpers/child-producer';
import { fillEvent } from '../../helpers/client-events';
import { FakeIngestServer } from '../../helpers/fake-ingest-server';
import { tempDir } from '../../helpers/postgres';

describe('client/spool recovery against the fake server (integration, real gRPC, real processes)', function () {
  this.timeout(90_000);
  let fake: FakeIngestServer;
  let dir: string;
  let client: OrderFlowClient;

  beforeEach(async () => {
    fake = new FakeIngestServer();
    await fake.start();
    dir = await tempDir('spool');
    client = createOrderFlowClient({ address: fake.address });
  });
  afterEach(async () => {
    fake.stall(false);
    await client.close();
    await fake.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a producer process SIGKILLed mid-stream and restarted on its spool: every event stored exactly once, the unacked ones resent', async () => {
    fake.ackDelayMs = 40; // keep unacknowledged events in the spool at all times
    const args = { address: fake.address, sourceId: 'spool-kill', spoolPath: path.join(dir, 'spool-kill.spool'), total: 20_000, maxWindowEvents: 3_000, progressEvery: 500 };
    const first = startChildProducer(args);
    await first.waitFor((l) => l.type === 'progress' && BigInt(l.lastCommittedSeq as string) >= 6_000n);
    first.child.kill('SIGKILL');
    expect(await first.exited).to.equal('SIGKILL');
    const killedAt = fake.source('spool-kill').mark;
    expect(Number(killedAt)).to.be.lessThan(20_000);

    const second = startChildProducer(args);
    const opened = await second.waitFor((l) => l.type === 'open');
    expect(opened.recovered as number, 'events recovered from the spool').to.be.greaterThan(0);
    expect(Number(opened.lastAcceptedSeq)).to.be.greaterThan(Number(opened.lastCommittedSeq));
    const done = await second.waitFor((l) => l.type === 'done');
    expect(await second.exited).to.equal(0);
    expect(done.failed).to.equal(0);

    const source = fake.source('spool-kill');
    expect(source.doubleStores).to.equal(0);
    expect(source.duplicates, 'nothing committed was resent').to.equal(0);
    expect(source.stored.size).to.equal(20_000);
    expect([...source.stored.keys()].every((seq, i) => seq === BigInt(i + 1))).to.equal(true);
    // The killed process's lock was taken over, and the closed spool is back to its header.
    expect((await fs.stat(args.spoolPath)).size).to.be.below(100);
    await fs.access(`${args.spoolPath}.lock`).then(
      () => expect.fail('lock left behind'),
      () => undefined,
    );
  });

  it('events spooled but never acked (producer destroyed while the server stalls) are resent by the next producer on the spool', async () => {
    const spoolPath = path.join(dir, 'stalled.spool');
    fake.stall(true);
    fake.onClientGone = 'discard';
    const first = await client.openIngest({ sourceId: 'stalled', spool: { path: spoolPath, fsync: 'always' } });
    for (let i = 1; i <= 300; i++) await first.send(fillEvent(i));
    await first.destroy();
    while (fake.openStreams > 0) await new Promise((r) => setTimeout(r, 5));
    expect(fake.source('stalled').stored.size).to.equal(0);
    fake.stall(false);

    const second = await client.openIngest({ sourceId: 'stalled', spool: { path: spoolPath } });
    expect(second.stats().spool?.recoveredEvents).to.equal(300);
    expect(second.lastAcceptedSeq).to.equal(300n);
    const next = await second.send(fillEvent(301));
    expect(next.seq).to.equal(301n);
    expect(await next.acked).to.deep.equal({ seq: 301n, status: 'stored' });
    await second.flush();
    expect(second.stats()).to.include({ eventsResent: 300, eventsSent: 1, eventsCommitted: 0 });
    expect(fake.source('stalled').stored.size).to.equal(301);
    expect(fake.source('stalled').stored.get(7n)?.fill?.fill_id).to.equal('s-f-7');
    await second.close();
  });

  it('recovered events the server already committed settle without a resend', async () => {
    const spoolPath = path.join(dir, 'committed.spool');
    const first = await client.openIngest({ sourceId: 'committed', spool: { path: spoolPath } });
    const acks: Promise<EventOutcome>[] = [];
    for (let i = 1; i <= 50; i++) acks.push((await first.send(fillEvent(i))).acked);
    await Promise.all(acks);
    // Lose the commit marks: a crash right after the acks, before the spool recorded them.
    fake.stall(true);
    for (let i = 51; i <= 60; i++) await first.send(fillEvent(i));
    await new Promise((r) => setTimeout(r, 50));
    fake.commitSilentlyAndDrop('committed');
    await first.destroy();

    const second = await client.openIngest({ sourceId: 'committed', spool: { path: spoolPath } });
    fake.stall(false);
    await second.flush();
    expect(second.stats()).to.include({ eventsResent: 0, eventsCommitted: 10 });
    expect(fake.source('committed').duplicates).to.equal(0);
    expect(fake.source('committed').stored.size).to.equal(60);
    await second.close();
  });

  it('refuses a spool locked by a live process or belonging to another source', async () => {
    const spoolPath = path.join(dir, 'locked.spool');
    const first = await client.openIngest({ sourceId: 'locked', spool: { path: spoolPath } });
    const other = createOrderFlowClient({ address: fake.address });
    try {
      const err = await other.openIngest({ sourceId: 'locked', spool: { path: spoolPath } }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(SpoolError);
      expect((err as SpoolError).message).to.include('already open in this process');
      await first.close();
      const wrong = await other.openIngest({ sourceId: 'someone-else', spool: { path: spoolPath } }).catch((e: unknown) => e);
      expect(wrong).to.be.instanceOf(SpoolError);
      expect((wrong as SpoolError).message).to.include('belongs to source "locked"');
    } finally {
      await other.close();
    }
  });
});
