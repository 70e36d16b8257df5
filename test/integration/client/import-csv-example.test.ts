import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { RejectCode } from '../../../src/client';
import { FakeIngestServer } from '../../helpers/fake-ingest-server';
import { tempDir } from '../../helpers/postgres';

const SCRIPT = path.resolve(__dirname, '../../../scripts/import-csv-example.js');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('scripts/import-csv-example against the fake server (integration, real process)', function () {
  this.timeout(60_000);
  let fake: FakeIngestServer;
  let dir: string;

  before(async () => {
    fake = new FakeIngestServer({ rejectIf: (e) => (e.fill?.qty === '0' ? { code: RejectCode.REJECT_CODE_OUT_OF_RANGE, reason: 'qty must be > 0' } : undefined) });
    await fake.start();
    dir = await tempDir('csv');
  });
  after(async () => {
    await fake.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('streams the rows, reports bad and rejected rows by line, and stores nothing twice on a second run', async () => {
    const file = path.join(dir, 'fills.csv');
    await fs.writeFile(
      file,
      [
        'fill_id,order_id,account_id,symbol,side,price,qty,ts_ns,fee,venue',
        'f-1,o-1,acc-1,AAPL,BUY,189.25,100,1700000000000000001,0.35,XNAS',
        'f-2,o-1,acc-1,AAPL,SELL,189.5,40,1700000000000000002,-0.01,"XNAS, floor ""B"""',
        'f-3,o-2,acc-1,AAPL,HOLD,1,1,1700000000000000003,,XNAS',
        'f-4,o-2,acc-1,AAPL,buy,1,0,1700000000000000004,,XNAS',
        '',
        'f-5,o-3,acc-2,MSFT,2,410.1,7,1700000000000000005,,',
      ].join('\n'),
    );
    const first = await run(['--address', fake.address, '--source', 'csv-1', file]);
    expect(first.code, first.stderr).to.equal(2);
    const [summaryLine, ...problemLines] = first.stdout.trim().split('\n');
    expect(JSON.parse(summaryLine!)).to.include({ rows: 5, stored: 3, alreadyPresent: 0, problems: 2, failed: 0 });
    expect(problemLines).to.deep.equal(['line 4: side must be BUY or SELL, got "HOLD"', 'line 5: REJECT_CODE_OUT_OF_RANGE: qty must be > 0']);
    const source = fake.source('csv-1');
    expect([...source.stored.keys()]).to.deep.equal([1n, 2n, 5n]);
    expect(source.stored.get(2n)?.fill).to.include({ venue: 'XNAS, floor "B"', fee: '-0.01', side: 2 });
    expect(source.quarantined.has(4n)).to.equal(true);

    const received = fake.counts.eventsReceived;
    const second = await run(['--address', fake.address, '--source', 'csv-1', file]);
    expect(JSON.parse(second.stdout.split('\n')[0]!)).to.include({ rows: 5, stored: 0, alreadyPresent: 4 });
    expect(fake.counts.eventsReceived, 'a replay sends nothing').to.equal(received);
    expect(source.doubleStores).to.equal(0);
  });

  it('fails with status 1 and a message when the header lacks a required column', async () => {
    const file = path.join(dir, 'bad.csv');
    await fs.writeFile(file, 'fill_id,order_id\nf-1,o-1\n');
    const result = await run(['--address', fake.address, '--source', 'csv-2', file]);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include('header lacks account_id, symbol, side, price, qty, ts_ns');
  });
});
