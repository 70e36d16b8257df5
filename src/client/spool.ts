import fs from 'node:fs';
import path from 'node:path';
import { Deferred } from './deferred';
import { SpoolError } from './errors';
import { decodeSpool, encodeCommittedRecord, encodeEventRecord, encodeHeaderRecord, SPOOL_MAGIC } from './spool-codec';

/**
 * When the spool calls fdatasync:
 * - `always`: before `send` resolves (one fdatasync per group of events
 *   appended in the same tick). Survives a crash of the machine.
 * - `interval`: every `fsyncIntervalMs`. A process crash loses nothing whose
 *   `send` resolved (the bytes are in the kernel); a machine crash can lose
 *   the last interval.
 * - `never`: left to the OS. Same as `interval` for a process crash.
 */
export type SpoolFsync = 'always' | 'interval' | 'never';

/** Options of the durable spool. */
export interface SpoolOptions {
  /** The spool file (created when missing; its directory must exist). A `<path>.lock` file sits beside it. */
  path: string;
  /** fsync policy. Default `'always'`. */
  fsync?: SpoolFsync;
  /** Period of fdatasync with `fsync: 'interval'`, ms. Default 100. */
  fsyncIntervalMs?: number;
  /** The file is rewritten with only the unacknowledged events once it is at least this big and mostly acknowledged, bytes. Default 8 MiB. */
  compactMinBytes?: number;
}

/** Figures of a spool. */
export interface SpoolStats {
  path: string;
  fsync: SpoolFsync;
  /** Current size of the file, bytes. */
  fileBytes: number;
  /** Events in the file that are not yet known to be committed. */
  liveEvents: number;
  /** Events found in the file at open that were not known to be committed. */
  recoveredEvents: number;
  /** Bytes of a torn or corrupt tail cut off at open. */
  truncatedBytes: number;
  compactions: number;
  fsyncs: number;
}

/** What a spool held when it was opened. */
export interface RecoveredSpool {
  /** Highest committed mark the spool recorded. */
  committedSeq: bigint;
  /** Events above that mark, in seq order (seq and `Event` bytes): never acknowledged, so they must be resent. */
  events: { seq: bigint; bytes: Buffer }[];
}

const DEFAULT_FSYNC_INTERVAL_MS = 100;
const DEFAULT_COMPACT_MIN_BYTES = 8 * 1024 * 1024;

/**
 * An append-only file backing a producer's window, so that a producer
 * process that crashes can restart on it and resend what was never acked
 * (the server drops what it already has, by seq).
 *
 * Appends made in one tick are written with one write(2) (and, with
 * `fsync: 'always'`, one fdatasync) before their `append` promises resolve.
 * Commit marks are appended as the acks arrive; when the file is large and
 * mostly acknowledged it is rewritten (temp file, fsync, rename, fsync of the
 * directory) with only the live events. One process at a time: a lock file
 * holding the owner's pid is taken at open (a dead owner's lock is taken over).
 */
export class Spool {
  private fd: number;
  private fileBytes: number;
  private readonly fsyncPolicy: SpoolFsync;
  private readonly compactMinBytes: number;
  /** Live EVENT records, oldest first, so compaction can rewrite them without re-encoding. */
  private live: { seq: bigint; record: Buffer }[] = [];
  private liveHead = 0;
  private liveBytes = 0;
  private committedSeq: bigint;
  private pending: Buffer[] = [];
  private group: Deferred<void> | undefined;
  private awaitingSync: Deferred<void>[] = [];
  private syncing = false;
  private dirty = false;
  private failure: SpoolError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly figures = { recoveredEvents: 0, truncatedBytes: 0, compactions: 0, fsyncs: 0 };

  private constructor(
    readonly path: string,
    private readonly sourceId: string,
    options: SpoolOptions,
    recovered: { committedSeq: bigint; live: { seq: bigint; record: Buffer }[]; truncatedBytes: number },
  ) {
    this.fsyncPolicy = options.fsync ?? 'always';
    this.compactMinBytes = options.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES;
    this.committedSeq = recovered.committedSeq;
    this.live = recovered.live;
    this.liveBytes = recovered.live.reduce((sum, r) => sum + r.record.length, 0);
    this.figures.recoveredEvents = recovered.live.length;
    this.figures.truncatedBytes = recovered.truncatedBytes;
    // Start from a clean file holding only what is live; this also drops a torn tail.
    this.fd = -1;
    this.fileBytes = 0;
    this.rewrite();
    if (this.fsyncPolicy === 'interval') {
      this.timer = setInterval(() => this.syncIfDirty(), options.fsyncIntervalMs ?? DEFAULT_FSYNC_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /**
   * Opens (or creates) the spool of `sourceId` and returns what it holds.
   * Throws SpoolError when it belongs to another source, is not a spool,
   * or is locked by a live process.
   */
  static open(options: SpoolOptions, sourceId: string): { spool: Spool; recovered: RecoveredSpool } {
    const file = path.resolve(options.path);
    acquireLock(file);
    try {
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new SpoolError(file, 'cannot be read', { cause: err });
        bytes = Buffer.alloc(0);
      }
      let decoded;
      try {
        decoded = decodeSpool(bytes);
      } catch (err) {
        throw new SpoolError(file, 'is not an orderflow spool file', { cause: err });
      }
      if (decoded.sourceId !== undefined && decoded.sourceId !== sourceId) {
        throw new SpoolError(file, `belongs to source ${JSON.stringify(decoded.sourceId)}, not ${JSON.stringify(sourceId)}`);
      }
      const live = decoded.events.filter((e) => e.seq > decoded.committedSeq);
      const spool = new Spool(file, sourceId, options, {
        committedSeq: decoded.committedSeq,
        live: live.map((e) => ({ seq: e.seq, record: e.record })),
        truncatedBytes: bytes.length - decoded.validBytes,
      });
      return { spool, recovered: { committedSeq: decoded.committedSeq, events: live.map((e) => ({ seq: e.seq, bytes: e.bytes })) } };
    } catch (err) {
      releaseLock(file);
      throw err;
    }
  }

  /** Appends an event; resolves once it is written (and synced, per the policy). Rejects with SpoolError on I/O failure. */
  append(seq: bigint, eventBytes: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new SpoolError(this.path, 'is closed'));
    const record = encodeEventRecord(seq, eventBytes);
    this.live.push({ seq, record });
    this.liveBytes += record.length;
    this.pending.push(record);
    return this.scheduleGroup().promise;
  }

  /** Records that every event up to `seq` is committed (no sync: losing it only means a resend the server drops). */
  markCommitted(seq: bigint): void {
    if (seq <= this.committedSeq || this.closed || this.failure) return;
    this.committedSeq = seq;
    while (this.liveHead < this.live.length && this.live[this.liveHead]!.seq <= seq) {
      this.liveBytes -= this.live[this.liveHead]!.record.length;
      this.liveHead++;
    }
    // Let go of acknowledged records long before the next file rewrite.
    if (this.liveHead > 1_024 && this.liveHead * 2 > this.live.length) {
      this.live = this.live.slice(this.liveHead);
      this.liveHead = 0;
    }
    this.pending.push(encodeCommittedRecord(seq));
    this.scheduleGroup();
  }

  /** Current figures. */
  stats(): SpoolStats {
    return { path: this.path, fsync: this.fsyncPolicy, fileBytes: this.fileBytes, liveEvents: this.live.length - this.liveHead, ...this.figures };
  }

  /**
   * Writes what is pending, syncs, closes the file and releases the lock.
   * With nothing live left the file is compacted to its header and mark.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.group) this.writeGroup();
    while (this.syncing) await new Promise((resolve) => setImmediate(resolve));
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    try {
      if (!this.failure) {
        if (this.liveHead === this.live.length) this.rewrite();
        else if (this.dirty) fs.fdatasyncSync(this.fd);
      }
    } finally {
      fs.closeSync(this.fd);
      releaseLock(this.path);
    }
  }

  // Groups every append of this tick into one write: the first append
  // schedules the write as a microtask, the others join it.
  private scheduleGroup(): Deferred<void> {
    if (!this.group) {
      this.group = new Deferred<void>();
      queueMicrotask(() => this.writeGroup());
    }
    return this.group;
  }

  private writeGroup(): void {
    const group = this.group;
    this.group = undefined;
    if (!group) return;
    if (this.closed || this.failure) {
      group.reject(this.failure ?? new SpoolError(this.path, 'is closed'));
      return;
    }
    try {
      const chunk = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
      this.pending = [];
      writeFully(this.fd, chunk);
      this.fileBytes += chunk.length;
      this.dirty = true;
    } catch (err) {
      this.fail(err);
      group.reject(this.failure);
      return;
    }
    if (this.fsyncPolicy === 'always') {
      this.awaitingSync.push(group);
      if (!this.syncing) this.startSync();
    } else {
      group.resolve();
      this.maybeCompact();
    }
  }

  // One fdatasync covers every group written before it started; groups that
  // arrive meanwhile wait for the next one (group commit, client side).
  private startSync(): void {
    const groups = this.awaitingSync;
    this.awaitingSync = [];
    this.syncing = true;
    this.dirty = false;
    fs.fdatasync(this.fd, (err) => {
      this.syncing = false;
      this.figures.fsyncs++;
      if (err) {
        this.fail(err);
        for (const g of groups) g.reject(this.failure);
        for (const g of this.awaitingSync.splice(0)) g.reject(this.failure);
        return;
      }
      for (const g of groups) g.resolve();
      if (this.awaitingSync.length > 0) this.startSync();
      else this.maybeCompact();
    });
  }

  private syncIfDirty(): void {
    if (!this.dirty || this.syncing || this.closed || this.failure) return;
    this.syncing = true;
    this.dirty = false;
    fs.fdatasync(this.fd, (err) => {
      this.syncing = false;
      this.figures.fsyncs++;
      if (err) this.fail(err);
    });
  }

  // Only between groups, with no sync in flight, so every promise already
  // resolved refers to bytes that the rewritten file also holds.
  private maybeCompact(): void {
    if (this.syncing || this.group || this.closed || this.failure) return;
    if (this.fileBytes < this.compactMinBytes || this.liveBytes * 2 > this.fileBytes) return;
    try {
      this.rewrite();
    } catch (err) {
      this.fail(err);
    }
  }

  /** Rewrites the file as MAGIC, HEADER, COMMITTED and the live events: temp file, fsync, rename, fsync of the directory. */
  private rewrite(): void {
    const live = this.live.slice(this.liveHead);
    const parts = [SPOOL_MAGIC, encodeHeaderRecord(this.sourceId), encodeCommittedRecord(this.committedSeq), ...live.map((r) => r.record)];
    const content = Buffer.concat(parts);
    const tmp = `${this.path}.tmp`;
    const tmpFd = fs.openSync(tmp, 'w', 0o600);
    try {
      writeFully(tmpFd, content);
      fs.fdatasyncSync(tmpFd);
    } finally {
      fs.closeSync(tmpFd);
    }
    fs.renameSync(tmp, this.path);
    syncDirectory(path.dirname(this.path));
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.figures.compactions++;
    }
    this.fd = fs.openSync(this.path, 'a');
    this.fileBytes = content.length;
    this.live = live;
    this.liveHead = 0;
    this.liveBytes = live.reduce((sum, r) => sum + r.record.length, 0);
    this.dirty = false;
  }

  private fail(err: unknown): void {
    if (!this.failure) this.failure = new SpoolError(this.path, 'write failed', { cause: err });
  }
}

function writeFully(fd: number, chunk: Buffer): void {
  let offset = 0;
  while (offset < chunk.length) offset += fs.writeSync(fd, chunk, offset, chunk.length - offset);
}

function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Takes `<file>.lock` for this process. A lock whose pid is no longer alive
 * (a producer killed with SIGKILL) is taken over.
 */
function acquireLock(file: string): void {
  const lock = `${file}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new SpoolError(file, 'cannot create its lock file', { cause: err });
    }
    const owner = Number(fs.readFileSync(lock, 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
      throw new SpoolError(file, owner === process.pid ? 'is already open in this process' : `is locked by live process ${owner}`);
    }
    fs.rmSync(lock, { force: true });
  }
  throw new SpoolError(file, 'lock could not be taken');
}

function releaseLock(file: string): void {
  const lock = `${file}.lock`;
  try {
    if (fs.readFileSync(lock, 'utf8').trim() === String(process.pid)) fs.rmSync(lock, { force: true });
  } catch {
    // Already gone.
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
