import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { EmbeddedPostgres } from '../../../src/db/embedded';
import { silentLogger } from '../../../src/telemetry/logger';
import { createTestDatabase, freePort, migrateTestDatabase, tempDir, withClient, type TestDatabase } from '../../helpers/postgres';

const SCRIPTS = path.resolve(__dirname, '../../../scripts');

interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | string>;
}

/** Runs a compiled CLI script the way `npm run` does, with only the env given (no inherited DATABASE_URL). */
function cli(script: 'import' | 'purge', args: string[], env: Record<string, string>): CliRun {
  const child = spawn(process.execPath, [path.join(SCRIPTS, `${script}.js`), ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function finish(run: CliRun, timeoutMs = 30_000): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(new Error(`CLI still running after ${timeoutMs} ms.\nstdout:\n${run.stdout()}\nstderr:\n${run.stderr()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('batch CLIs: npm run import / npm run purge (integration, real processes)', () => {
  let db: TestDatabase;
  let dir: string;

  before(async () => {
    db = await createTestDatabase('cli');
    dir = await tempDir('cli');
    // Migrated up front so each test can query the tables before its CLI runs (the CLIs migrate too).
    await migrateTestDatabase(db.url);
  });

  after(async () => {
    await db?.drop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('import: exits 3 with an exact summary when rows were quarantined; a rerun stores nothing and exits 0', async () => {
    const file = path.join(dir, 'fills-small.csv');
    await fs.writeFile(
      file,
      [
        'fill_id,order_id,account_id,symbol,side,price,qty,ts_ns,fee,venue',
        'f-1,o-1,acc,AAPL,BUY,10,1,1700000000000000001,,XNAS',
        'f-2,o-1,acc,AAPL,BUY,10,0,1700000000000000002,,XNAS',
        'f-3,o-1,acc,AAPL,BUY,10,2,1700000000000000003,,XNAS',
      ].join('\n'),
    );
    const first = cli('import', [file], { DATABASE_URL: db.url });
    expect(await finish(first), first.stderr()).to.equal(3);
    expect(first.stdout()).to.match(/source import:fills-small\.csv \(fills\): completed/);
    expect(first.stdout()).to.match(/stored\s+2\n/);
    expect(first.stdout()).to.match(/quarantined \(invalid\)\s+1\n/);
    expect(first.stdout()).to.include('line 3: REJECT_CODE_OUT_OF_RANGE: qty must be > 0');

    const again = cli('import', [file, '--batch-size', '1'], { DATABASE_URL: db.url });
    expect(await finish(again), again.stderr()).to.equal(0);
    expect(again.stdout()).to.match(/stored\s+0\n/);
    expect(again.stdout()).to.match(/already imported \(skipped\)\s+3\s+\(lines up to 4/);
  });

  it('import: SIGINT mid-file stops after the running chunks (exit 130); a rerun stores every row exactly once', async function () {
    this.timeout(120_000);
    const rows = 60_000;
    const file = path.join(dir, 'fills-big.csv');
    const header = 'fill_id,order_id,account_id,symbol,side,price,qty,ts_ns,fee,venue\n';
    const body = Array.from({ length: rows }, (_, i) => `big-${i},o-big-${i},acc,AAPL,SELL,10.25,3,${1_700_000_000_000_000_000n + BigInt(i)},0.1,XNAS\n`).join('');
    await fs.writeFile(file, header + body);
    const source = "'import:fills-big.csv'";
    const mark = () => withClient(db.url, async (c) => Number((await c.query(`SELECT coalesce(max(last_seq), 0)::int AS n FROM sources WHERE source_id = ${source}`)).rows[0].n));

    const run = cli('import', [file, '--batch-size', '500', '--concurrency', '2'], { DATABASE_URL: db.url });
    for (let i = 0; i < 3_000 && (await mark()) === 0 && run.child.exitCode === null; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    run.child.kill('SIGINT');
    const code = await finish(run);
    const markAfter = await mark();
    if (code === 130) {
      expect(run.stdout()).to.include('interrupted');
      expect(markAfter).to.be.below(rows + 1);
    } else {
      // The import outran the signal on a fast machine: nothing left to prove about the interrupt.
      expect(code).to.equal(0);
    }
    const stored = () => withClient(db.url, async (c) => (await c.query(`SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM fills WHERE source_id = ${source}`)).rows[0]);
    expect((await stored()).n).to.equal(markAfter - 1);

    const rerun = cli('import', [file], { DATABASE_URL: db.url });
    expect(await finish(rerun, 60_000), rerun.stderr()).to.equal(0);
    expect(await stored()).to.deep.equal({ n: rows, d: rows });
  });

  it('purge: --dry-run reports the count and deletes nothing; the real run deletes it; bad arguments exit 2', async () => {
    await withClient(db.url, (c) =>
      c.query(`INSERT INTO fills (source_id, seq, fill_id, order_id, account_id, symbol, side, price, qty, ts_ns)
               SELECT 'old', g, 'p-' || g, 'o', 'acc', 'AAPL', 1, 1, 1, 1600000000000000000 + g FROM generate_series(1, 1234) g`),
    );
    const dry = cli('purge', ['--before', '2021-01-01', '--dry-run'], { DATABASE_URL: db.url });
    expect(await finish(dry), dry.stderr()).to.equal(0);
    expect(dry.stdout()).to.match(/fills\s+would delete\s+1,234 rows/);
    expect(dry.stdout()).to.include('dry run: nothing deleted');
    const left = async () => withClient(db.url, async (c) => Number((await c.query("SELECT count(*) AS n FROM fills WHERE source_id = 'old'")).rows[0].n));
    expect(await left()).to.equal(1_234);

    const real = cli('purge', ['--before', '2021-01-01T00:00:00Z', '--batch-size', '100', '--concurrency', '3'], { DATABASE_URL: db.url });
    expect(await finish(real), real.stderr()).to.equal(0);
    expect(real.stdout()).to.match(/fills\s+deleted\s+1,234 rows/);
    expect(await left()).to.equal(0);

    const bad = cli('purge', ['--before', 'last tuesday'], { DATABASE_URL: db.url });
    expect(await finish(bad)).to.equal(2);
    expect(bad.stderr()).to.include('--before').and.include('usage: npm run purge');
  });

  it('without DATABASE_URL it uses the embedded cluster the service already runs under DATA_DIR, and leaves it running', async function () {
    this.timeout(180_000);
    const dataDir = await tempDir('cli-embedded');
    const port = await freePort();
    // Stands in for a running service: it owns the embedded cluster.
    const service = new EmbeddedPostgres({ dataDir, port, logger: silentLogger });
    const url = await service.start();
    try {
      const run = cli('purge', ['--before', '2021-01-01', '--dry-run'], { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()) });
      expect(await finish(run, 60_000), run.stderr()).to.equal(0);
      expect(run.stdout()).to.include('would delete');
      // Still the same postmaster, still answering: the CLI did not take it over.
      expect(await withClient(url, async (c) => (await c.query('SELECT 1 AS one')).rows[0].one)).to.equal(1);
      expect(service.state).to.equal('RUNNING');
    } finally {
      await service.stop();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
