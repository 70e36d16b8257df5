import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SpoolError } from '../../../src/client/errors';
import { decodeEvent, encodeEvent } from '../../../src/client/event-codec';
import { toWireEvent } from '../../../src/client/events';
import { Spool } from '../../../src/client/spool';
import { decodeSpool, encodeCommittedRecord, encodeEventRecord, encodeHeaderRecord, SPOOL_MAGIC } from '../../../src/client/spool-codec';

const bytesOf = (seq: number) => encodeEvent(toWireEvent({ fill: { fill_id: `f-${seq}`, order_id: 'o', account_id: 'a', symbol: 'S', side: 1, price: '1', qty: '1', ts_ns: String(seq) } }, BigInt(seq)));

describe('client/spool codec', () => {
  const file = Buffer.concat([SPOOL_MAGIC, encodeHeaderRecord('src'), encodeEventRecord(1n, bytesOf(1)), encodeEventRecord(2n, bytesOf(2)), encodeCommittedRecord(1n), encodeEventRecord(3n, bytesOf(3))]);

  it('decodes header, events and the highest commit mark', () => {
    const d = decodeSpool(file);
    expect(d.sourceId).to.equal('src');
    expect(d.committedSeq).to.equal(1n);
    expect(d.events.map((e) => e.seq)).to.deep.equal([1n, 2n, 3n]);
    expect(decodeEvent(d.events[2]!.bytes).fill!.fill_id).to.equal('f-3');
    expect(d.validBytes).to.equal(file.length);
  });

  it('stops cleanly at a torn tail, whatever the cut', () => {
    for (let cut = 0; cut < file.length; cut++) {
      const d = decodeSpool(file.subarray(0, cut));
      expect(d.validBytes).to.be.at.most(cut);
      // Whatever survives is a prefix of what was written.
      expect(d.events.map((e) => e.seq)).to.deep.equal([1n, 2n, 3n].slice(0, d.events.length));
    }
  });

  it('stops at a corrupt record (CRC) and refuses a file that is not a spool', () => {
    const corrupt = Buffer.from(file);
    const secondEventAt = SPOOL_MAGIC.length + encodeHeaderRecord('src').length + encodeEventRecord(1n, bytesOf(1)).length;
    corrupt[secondEventAt + 20] ^= 0xff;
    const d = decodeSpool(corrupt);
    expect(d.events.map((e) => e.seq)).to.deep.equal([1n]);
    expect(d.validBytes).to.equal(secondEventAt);
    expect(() => decodeSpool(Buffer.from('hello world, not a spool'))).to.throw(/magic/);
  });
});

describe('client/Spool', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orderflow-spool-unit-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('recovers only the events above the last commit mark, after a reopen', async () => {
    const file = path.join(dir, 'a.spool');
    const { spool, recovered } = Spool.open({ path: file }, 'src');
    expect(recovered.events).to.deep.equal([]);
    await Promise.all([1, 2, 3, 4, 5].map((s) => spool.append(BigInt(s), bytesOf(s))));
    spool.markCommitted(3n);
    await spool.append(6n, bytesOf(6));
    await simulateCrash(spool);
    const again = Spool.open({ path: file }, 'src');
    expect(again.recovered.committedSeq).to.equal(3n);
    expect(again.recovered.events.map((e) => e.seq)).to.deep.equal([4n, 5n, 6n]);
    expect(decodeEvent(again.recovered.events[0]!.bytes).fill!.fill_id).to.equal('f-4');
    expect(again.spool.stats()).to.include({ recoveredEvents: 3, liveEvents: 3 });
    await again.spool.close();
  });

  it('groups the appends of one tick into one write and, with fsync always, one fdatasync', async () => {
    const { spool } = Spool.open({ path: path.join(dir, 'g.spool'), fsync: 'always' }, 'src');
    await Promise.all(Array.from({ length: 100 }, (_, i) => spool.append(BigInt(i + 1), bytesOf(i + 1))));
    expect(spool.stats().fsyncs).to.equal(1);
    for (let i = 101; i <= 103; i++) await spool.append(BigInt(i), bytesOf(i));
    expect(spool.stats().fsyncs).to.equal(4);
    await spool.close();
  });

  it('fsync never and interval do not sync per append; interval syncs on its timer', async () => {
    const never = Spool.open({ path: path.join(dir, 'n.spool'), fsync: 'never' }, 'src').spool;
    for (let i = 1; i <= 5; i++) await never.append(BigInt(i), bytesOf(i));
    expect(never.stats().fsyncs).to.equal(0);
    await never.close();
    const interval = Spool.open({ path: path.join(dir, 'i.spool'), fsync: 'interval', fsyncIntervalMs: 20 }, 'src').spool;
    await interval.append(1n, bytesOf(1));
    expect(interval.stats().fsyncs).to.equal(0);
    await new Promise((r) => setTimeout(r, 80));
    expect(interval.stats().fsyncs).to.be.at.least(1);
    await interval.close();
  });

  it('compacts once the file is large and mostly acknowledged, keeping the live events', async () => {
    const file = path.join(dir, 'c.spool');
    const { spool } = Spool.open({ path: file, compactMinBytes: 20_000, fsync: 'never' }, 'src');
    for (let i = 1; i <= 1_000; i++) {
      await spool.append(BigInt(i), bytesOf(i));
      if (i % 10 === 0) spool.markCommitted(BigInt(i - 5));
    }
    const stats = spool.stats();
    expect(stats.compactions).to.be.greaterThan(0);
    expect(stats.fileBytes).to.be.below(20_000 + 2_000);
    expect(fs.statSync(file).size).to.equal(stats.fileBytes);
    await simulateCrash(spool);
    const again = Spool.open({ path: file }, 'src');
    expect(again.recovered.committedSeq).to.equal(995n);
    expect(again.recovered.events.map((e) => Number(e.seq))).to.deep.equal([996, 997, 998, 999, 1_000]);
    await again.spool.close();
  });

  it('close() with nothing live shrinks the file to its header and mark', async () => {
    const file = path.join(dir, 'e.spool');
    const { spool } = Spool.open({ path: file }, 'src');
    for (let i = 1; i <= 50; i++) await spool.append(BigInt(i), bytesOf(i));
    spool.markCommitted(50n);
    await spool.close();
    await spool.close();
    const d = decodeSpool(fs.readFileSync(file));
    expect(d).to.include({ sourceId: 'src', committedSeq: 50n });
    expect(d.events).to.deep.equal([]);
    expect(fs.existsSync(`${file}.lock`)).to.equal(false);
  });

  it('cuts a torn tail at open and reports it', async () => {
    const file = path.join(dir, 't.spool');
    const { spool } = Spool.open({ path: file }, 'src');
    for (let i = 1; i <= 3; i++) await spool.append(BigInt(i), bytesOf(i));
    await simulateCrash(spool);
    fs.appendFileSync(file, encodeEventRecord(4n, bytesOf(4)).subarray(0, 12));
    const again = Spool.open({ path: file }, 'src');
    expect(again.spool.stats().truncatedBytes).to.equal(12);
    expect(again.recovered.events.map((e) => e.seq)).to.deep.equal([1n, 2n, 3n]);
    await again.spool.close();
  });

  it('takes over the lock of a dead process and refuses one held by a live process', async () => {
    const file = path.join(dir, 'l.spool');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    fs.writeFileSync(`${file}.lock`, dead);
    const { spool } = Spool.open({ path: file }, 'src');
    expect(fs.readFileSync(`${file}.lock`, 'utf8')).to.equal(String(process.pid));
    await spool.close();
    fs.writeFileSync(`${file}.lock`, String(process.ppid));
    expect(() => Spool.open({ path: file }, 'src')).to.throw(SpoolError, /locked by live process/);
    fs.rmSync(`${file}.lock`);
    fs.writeFileSync(file, 'garbage that is not a spool');
    expect(() => Spool.open({ path: file }, 'src')).to.throw(SpoolError, /not an orderflow spool/);
    expect(fs.existsSync(`${file}.lock`), 'a failed open releases its lock').to.equal(false);
  });
});

/** Leaves the file as a killed process would: written, never closed, lock still held (by a pid we then forget). */
async function simulateCrash(spool: Spool): Promise<void> {
  await new Promise((r) => setImmediate(r));
  const file = spool.path;
  const internals = spool as unknown as { fd: number; closed: boolean; timer?: NodeJS.Timeout };
  fs.closeSync(internals.fd);
  internals.closed = true;
  if (internals.timer) clearInterval(internals.timer);
  fs.rmSync(`${file}.lock`, { force: true });
}
