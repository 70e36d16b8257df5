import { expect } from 'chai';
import fs from 'node:fs/promises';
import path from 'node:path';
import { healthClient, waitForHealth } from '../../helpers/grpc';
import { freePort, tempDir, withClient } from '../../helpers/postgres';
import { postgresPidsFor, startService, waitForExit, type ServiceProcess } from '../../helpers/process';

describe('service life cycle (integration, real process)', function () {
  this.timeout(240_000);
  let dataDir: string;
  let env: Record<string, string>;
  let running: ServiceProcess | undefined;

  before(async () => {
    dataDir = await tempDir('service');
    env = {
      DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(await freePort()),
      GRPC_ADDRESS: `127.0.0.1:${await freePort()}`,
      METRICS_ADDRESS: 'off',
      SHUTDOWN_GRACE_MS: '2000',
    };
  });
  after(async () => {
    if (running && running.child.exitCode === null) {
      running.child.kill('SIGTERM');
      await waitForExit(running, 30_000).catch(() => running?.child.kill('SIGKILL'));
    }
    for (const pid of await postgresPidsFor(dataDir)) process.kill(pid, 'SIGKILL');
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  const grpcPort = () => Number(env.GRPC_ADDRESS!.split(':')[1]);
  const databaseUrl = async () => {
    const { user, password } = JSON.parse(await fs.readFile(path.join(dataDir, 'embedded.json'), 'utf8')) as { user: string; password: string };
    return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${env.EMBEDDED_PG_PORT}/orderflow`;
  };

  it('exits non-zero on bad config, naming each bad key', async () => {
    const proc = startService({ ...env, GRPC_ADDRESS: 'nonsense', INGEST_BATCH_MAX_ROWS: '-5' });
    const code = await waitForExit(proc, 15_000);
    expect(code).to.equal(1);
    expect(proc.output()).to.include('GRPC_ADDRESS').and.to.include('INGEST_BATCH_MAX_ROWS');
  });

  it('starts on the embedded database, exits 0 on SIGTERM with an open stream, leaving no postgres', async () => {
    running = startService(env);
    expect(await waitForHealth(grpcPort(), 'SERVING', 60_000)).to.equal('SERVING');
    await withClient(await databaseUrl(), (c) => c.query("INSERT INTO sources (source_id, last_seq) VALUES ('lifecycle-marker', 42)"));

    // An open server stream (health Watch) must not keep the process alive past the grace period.
    const watcher = healthClient(grpcPort());
    const call = watcher.Watch({ service: '' });
    const statuses: string[] = [];
    call.on('data', (m: { status: string | number }) => statuses.push(String(m.status)));
    const ended = new Promise<void>((resolve) => {
      call.on('error', () => resolve());
      call.on('end', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 300));

    const sentAt = Date.now();
    running.child.kill('SIGTERM');
    const code = await waitForExit(running, 15_000);
    expect(code).to.equal(0);
    expect(Date.now() - sentAt).to.be.below(15_000);
    await ended;
    watcher.close();
    expect(statuses).to.include('NOT_SERVING');
    expect(await postgresPidsFor(dataDir)).to.deep.equal([]);
  });

  it('comes back after SIGKILL with the earlier data intact', async () => {
    running = startService(env);
    expect(await waitForHealth(grpcPort(), 'SERVING', 60_000)).to.equal('SERVING');
    running.child.kill('SIGKILL');
    await waitForExit(running, 10_000);
    // The killed service's postmaster is still running; the next start takes it over.
    expect((await postgresPidsFor(dataDir)).length).to.be.greaterThan(0);

    running = startService(env);
    expect(await waitForHealth(grpcPort(), 'SERVING', 60_000)).to.equal('SERVING');
    const { rows } = await withClient(await databaseUrl(), (c) => c.query<{ last_seq: string }>("SELECT last_seq FROM sources WHERE source_id = 'lifecycle-marker'"));
    expect(rows.map((r) => r.last_seq)).to.deep.equal(['42']);
    expect(running.output()).to.not.match(/"level":"(error|fatal)"/);

    running.child.kill('SIGTERM');
    expect(await waitForExit(running, 15_000)).to.equal(0);
    expect(await postgresPidsFor(dataDir)).to.deep.equal([]);
  });

  it('a second signal forces the exit', async () => {
    running = startService({ ...env, SHUTDOWN_GRACE_MS: '20000' });
    expect(await waitForHealth(grpcPort(), 'SERVING', 60_000)).to.equal('SERVING');
    // Hold a stream open so the graceful path would wait the full 20 s.
    const watcher = healthClient(grpcPort());
    const call = watcher.Watch({ service: '' });
    call.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    running.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    running.child.kill('SIGTERM');
    const code = await waitForExit(running, 10_000);
    watcher.close();
    expect(code).to.equal(2);
    expect(running.output()).to.include('forced exit');
  });
});
