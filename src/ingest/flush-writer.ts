import { context, SpanStatusCode, trace, type Link } from '@opentelemetry/api';
import { isConnectionLevelError, sqlStateOf } from '../db/pg-errors';
import { rollbackCauseAttributes } from '../db/pool-tracing';
import type { Readable } from 'node:stream';
import type { QueryResult, QueryResultRow } from 'pg';
import type { Pool, PooledConnection, QueryOptions, Transaction } from '../db/types';
import { DbTimeoutError } from '../errors';
import { RejectCode } from '../generated/orderflow/v1/RejectCode';
import type { FlushHooks } from '../store/change-set';
import { copyEventRows, decodeEventRow, seqOfRow, type EventTable } from '../store/events';
import { insertQuarantine, type QuarantineRow } from '../store/quarantine';
import { beginIdentified, lockSources, SEAL_AND_COMMIT_RECORDED_SQL, SEAL_REFUSED_SQLSTATE, sealAndCommitSql, terminateStaleBackend, transactionStatus, type SourceSeal } from '../store/sources';
import type { Logger } from '../telemetry/logger';
import { getTracer } from '../telemetry/tracing';
import type { BatchWindow, Contribution, PendingReject } from './batch-window';
import type { EventInput } from './event';
import { PredecessorPendingError, type FlushOrder } from './flush-order';
import { ingestMetrics } from './metrics';
import { compareSeq, isStorableSeq } from './sequencer';
import { rejectCodeName } from './validate';
import { encodeEvent } from './wire-format';

/** What became of one window. */
export interface FlushOutcome {
  /** False when the flush was abandoned at shutdown: nothing of it is known durable, nothing may be acked. */
  committed: boolean;
  /** Contributions dropped because their source's epoch moved on (a newer stream, possibly on another instance). */
  fenced: Set<Contribution>;
  /** Rows the database refused, quarantined with REJECT_CODE_STORAGE_REFUSED, by contribution. */
  refused: Map<Contribution, PendingReject[]>;
}

/** Writes batch windows durably. The pipeline depends on this, not on pg, so it can be tested with a fake. */
export interface BatchSink {
  /**
   * Writes `window` in one transaction, retrying until it commits or `signal`
   * aborts. Never rejects. `order` places it behind a flush still in flight.
   */
  write(window: BatchWindow, signal: AbortSignal, order?: FlushOrder): Promise<FlushOutcome>;
}

/** Options of the flush writer. */
export interface FlushWriterOptions {
  pool: Pool;
  hooks: FlushHooks;
  logger: Logger;
  /** Cap of the backoff between attempts, ms (INGEST_FLUSH_RETRY_MAX_MS). */
  retryMaxMs: number;
  /** First backoff, ms. Default 50. */
  retryBaseMs?: number;
}

/** Most stream links on one flush span. */
const MAX_SPAN_LINKS = 64;

/** Where one attempt got to; decides what the next attempt must clean up. */
interface AttemptState {
  /** Transaction id and backend, known from BEGIN. */
  xid?: string;
  backendPid?: number;
  /** Set when the callback finished: COMMIT was sent, its outcome may be unknown. */
  commitSentAtMs?: number;
  outcome?: FlushOutcome;
  copyMs: number;
  rows: number;
  bytes: number;
}

/** The SQLSTATE behind a (translated) database error. */
function sqlStateBehind(err: unknown): string | undefined {
  const own = (err as { sqlState?: unknown } | undefined)?.sqlState;
  if (typeof own === 'string') return own;
  return sqlStateOf((err as { cause?: unknown } | undefined)?.cause) ?? sqlStateOf(err);
}

/** Class 22 (data exception) or 23 (integrity constraint violation): the data, not the database, is at fault. */
export function isDataError(err: unknown): boolean {
  const state = sqlStateBehind(err);
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'));
}

/** The connection broke or stalled: its backend may live on, holding locks. */
function isTransportFailure(err: unknown): boolean {
  if (err instanceof PredecessorPendingError) return false;
  return isConnectionLevelError(err) || err instanceof DbTimeoutError || sqlStateBehind(err) === undefined;
}

function messageBehind(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  return ((cause as Error | undefined)?.message ?? (err as Error).message ?? 'unknown error').slice(0, 500);
}

/** How one attempt orders its statements. */
interface AttemptMode {
  /** Bisect the rows under savepoints to find the ones the database refuses. */
  isolate: boolean;
  /**
   * COPY first, let the seal lock and check the sources after: the COPY then
   * runs while the flush before this one commits. Only for a first attempt;
   * when the seal finds the sources other than expected (fencing, an earlier
   * window not committed, rows an earlier attempt committed) the flush is
   * redone in the locked-first order.
   */
  copyFirst: boolean;
}

/**
 * Writes a batch window in one transaction: BEGIN, COPY each table,
 * quarantine rejects, then seal and COMMIT in one message (lock the sources,
 * check fencing and high-water marks, advance the marks, NOTIFY; migration
 * 005). A retry locks the sources before its COPY, so rows an earlier
 * attempt may have committed are left out.
 * Retries every failure with capped, jittered backoff until it commits or
 * the pipeline shuts down. A COPY that fails on a data error is redone with
 * the rows bisected under savepoints until the refused rows are found; they
 * are quarantined, the rest commits. With flushes pipelined, a flush commits
 * only once every earlier window of its streams has (flush-order.ts).
 */
export class FlushWriter implements BatchSink {
  private readonly retryBaseMs: number;

  constructor(private readonly options: FlushWriterOptions) {
    this.retryBaseMs = options.retryBaseMs ?? 50;
  }

  async write(window: BatchWindow, signal: AbortSignal, order?: FlushOrder): Promise<FlushOutcome> {
    let isolate = false;
    let copyFirst = true;
    let failures = 0;
    let unresolved: AttemptState | undefined;
    let stranded: AttemptState | undefined;
    const { pool, logger } = this.options;
    for (;;) {
      if (signal.aborted) return { committed: false, fenced: new Set(), refused: new Map() };
      let err: unknown;
      const state: AttemptState = { copyMs: 0, rows: 0, bytes: 0 };
      try {
        if (stranded?.backendPid) {
          // A stalled connection's backend may still hold the source locks; end it.
          const ended = await terminateStaleBackend(pool, stranded.backendPid, stranded.xid ?? '0');
          if (ended) logger.warn({ pid: stranded.backendPid, window: window.id }, 'terminated the backend of a failed flush');
          stranded = undefined;
        }
        if (unresolved?.xid) {
          // COMMIT was sent but its answer was lost: ask PostgreSQL what became of it.
          const status = await transactionStatus(pool, unresolved.xid);
          if (status === 'committed') {
            logger.warn({ window: window.id, xid: unresolved.xid }, 'flush COMMIT outcome was unknown; PostgreSQL reports it committed');
            return unresolved.outcome!;
          }
          if (status === 'in progress') {
            stranded = unresolved;
            throw new Error('The earlier attempt of this flush is still in progress.');
          }
          unresolved = undefined;
        }
      } catch (resolveErr) {
        err = resolveErr;
      }
      if (err === undefined) {
        const mode: AttemptMode = { isolate, copyFirst };
        copyFirst = false;
        try {
          return await this.attempt(window, mode, state, order);
        } catch (attemptErr) {
          const predecessor = order?.predecessor;
          if (attemptErr instanceof PredecessorPendingError && predecessor && !predecessor.isDone) {
            // Rolled back behind a flush that failed after locking; it retries, this one follows it.
            await untilDoneOrAborted(predecessor.done, signal);
            continue;
          }
          if (mode.copyFirst && isSealRefusal(attemptErr)) {
            // The sources were not as the COPY-first attempt expected: an earlier window has not
            // committed (follow its retry) or a newer stream fenced one. Redo with the locks first.
            // (Holding the locks, a seal cannot be refused; if it were, it fails and backs off below.)
            if (predecessor && !predecessor.isDone) await untilDoneOrAborted(predecessor.done, signal);
            continue;
          }
          if (!isolate && isDataError(attemptErr)) {
            logger.warn({ window: window.id, err: messageBehind(attemptErr) }, 'COPY refused a row; isolating the refused rows');
            isolate = true;
            continue;
          }
          err = attemptErr;
          if (state.backendPid && isTransportFailure(attemptErr)) stranded = state;
          if (state.commitSentAtMs !== undefined) unresolved = state;
        }
      }
      failures++;
      ingestMetrics.flushFailures.inc();
      const delayMs = Math.min(this.options.retryMaxMs, this.retryBaseMs * 2 ** Math.min(failures - 1, 20)) * (0.5 + Math.random() / 2);
      const log = failures === 1 || failures % 10 === 0 ? logger.error.bind(logger) : logger.warn.bind(logger);
      log({ window: window.id, attempt: failures, delayMs: Math.round(delayMs), err: messageBehind(err), code: sqlStateBehind(err) }, 'ingest flush failed; rolled back, will retry');
      await sleep(delayMs, signal);
    }
  }

  private async attempt(window: BatchWindow, mode: AttemptMode, state: AttemptState, order: FlushOrder | undefined): Promise<FlushOutcome> {
    const { isolate } = mode;
    const links: Link[] = [];
    for (const c of window.contributions) {
      if (links.length >= MAX_SPAN_LINKS) break;
      if (c.stream.spanContext) links.push({ context: c.stream.spanContext });
    }
    const span = getTracer().startSpan('ingest.flush', {
      links,
      attributes: {
        'ingest.window_id': window.id,
        'ingest.events': window.events,
        'ingest.window_ms': Math.round(performance.now() - window.openedAtMs),
        'ingest.streams': window.contributions.length,
        'ingest.isolating': isolate,
        'ingest.copy_first': mode.copyFirst,
      },
    });
    const started = performance.now();
    try {
      const outcome = await context.with(trace.setSpan(context.active(), span), () => this.transaction(window, mode, state, order));
      const commitMs = performance.now() - (state.commitSentAtMs ?? performance.now());
      let refused = 0;
      for (const list of outcome.refused.values()) refused += list.length;
      span.setAttributes({
        'ingest.rows': state.rows,
        'ingest.bytes': state.bytes,
        'ingest.copy_ms': Math.round(state.copyMs * 100) / 100,
        'ingest.commit_ms': Math.round(commitMs * 100) / 100,
        'ingest.rejected': window.rejectCount,
        'ingest.storage_refused': refused,
        'ingest.fenced_streams': outcome.fenced.size,
        'ingest.outcome': 'committed',
      });
      span.setStatus({ code: SpanStatusCode.OK });
      ingestMetrics.flushDuration.observe({ outcome: 'committed' }, (performance.now() - started) / 1000);
      return outcome;
    } catch (err) {
      if (err instanceof PredecessorPendingError || isSealRefusal(err)) {
        // Not a failure: the attempt rolled back to be redone in order.
        span.setAttribute('ingest.outcome', err instanceof PredecessorPendingError ? 'behind_predecessor' : 'redo_locked_first');
        span.addEvent('rollback', { 'exception.message': (err as Error).message });
        throw err;
      }
      span.setAttribute(
        'ingest.outcome',
        isDataError(err) && !isolate ? 'isolating' : 'rolled_back',
      );
      // The SQLSTATE on the flush span itself, so a trace search finds rolled-back flushes by cause.
      const sqlState = sqlStateBehind(err);
      if (sqlState !== undefined) span.setAttribute('db.response.status_code', sqlState);
      span.addEvent('rollback', rollbackCauseAttributes(err));
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: messageBehind(err) });
      ingestMetrics.flushDuration.observe({ outcome: 'failed' }, (performance.now() - started) / 1000);
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * BEGIN … COMMIT on a connection of our own rather than withTransaction:
   * the writer must know whether COMMIT was sent (its outcome may then be
   * unknown), and must destroy a connection that failed in transit (timed
   * out or broken) instead of handing it back to the pool. Three round trips
   * when nothing goes wrong: BEGIN (with the transaction's id), the COPY,
   * and the seal with COMMIT (migration 005).
   */
  private async transaction(window: BatchWindow, mode: AttemptMode, state: AttemptState, order: FlushOrder | undefined): Promise<FlushOutcome> {
    const conn = await this.options.pool.acquire();
    let destroyWith: Error | undefined;
    try {
      Object.assign(state, await beginIdentified(conn));
      try {
        const tx = new ConnectionTransaction(conn);
        const { outcome, seals } = await this.writeInTransaction(tx, window, mode, state, order);
        const { hooks } = this.options;
        const changes = window.changeSet();
        if (hooks.beforeCommit && !hooks.notification) await hooks.beforeCommit(tx, changes);
        const sql = sealAndCommitSql(seals, hooks.notification?.(changes));
        state.outcome = outcome;
        state.commitSentAtMs = performance.now();
        await conn.query({ op: 'ingest.flush.commit', recordedSql: SEAL_AND_COMMIT_RECORDED_SQL }, sql);
        order?.ticket.markLocked();
        return outcome;
      } catch (err) {
        if (isTransportFailure(err)) {
          destroyWith = err as Error;
        } else {
          // Also after the seal raised (its COMMIT was skipped); after a failed COMMIT it only warns.
          await conn.query({ op: 'ingest.flush.rollback' }, 'ROLLBACK').catch((rollbackErr: unknown) => {
            destroyWith = rollbackErr as Error;
          });
        }
        throw err;
      }
    } catch (err) {
      if (!destroyWith && isTransportFailure(err)) destroyWith = err as Error;
      throw err;
    } finally {
      conn.release(destroyWith);
    }
  }

  /**
   * Everything of the flush before its commit: the COPY, the rejects into
   * quarantine, and what the seal must find and set per source. A COPY-first
   * attempt decides without the locks, expecting each source's mark to be
   * the last seq before this window; the seal checks that, and when it does
   * not hold the flush is redone locks first, where the decisions are made
   * on what the locks return.
   */
  private async writeInTransaction(
    tx: Transaction,
    window: BatchWindow,
    mode: AttemptMode,
    state: AttemptState,
    order: FlushOrder | undefined,
  ): Promise<{ outcome: FlushOutcome; seals: SourceSeal[] }> {
    const { isolate } = mode;
    const outcome: FlushOutcome = { committed: true, fenced: new Set(), refused: new Map() };
    // Fenced here (a newer Hello on this instance): their events are dropped, never committed.
    const excluded = new Set<Contribution>();
    const active: Contribution[] = [];
    for (const c of window.contributions) {
      if (c.stream.state === 'FENCED') excluded.add(c);
      else active.push(c);
    }
    const copyStarted = performance.now();
    const predecessor = order?.predecessor;
    if (mode.copyFirst && !isolate && excluded.size === 0) {
      await this.copyWhole(tx, window, state);
      state.copyMs = performance.now() - copyStarted;
      const expected = new Map<Contribution, string>();
      for (const c of active) expected.set(c, c.prevSeq);
      const seals = sealsOf(active, expected, (c) => c.stream.epoch);
      await insertQuarantine(tx, quarantineRows(active, expected, outcome));
      // Seal behind the flush before this one: it must have committed for the marks to match.
      if (predecessor && !predecessor.isLocked) await predecessor.locked;
      return { outcome, seals };
    }

    // Queue behind the flush before this one in PostgreSQL's lock queue rather than overtake it.
    if (predecessor && !predecessor.isLocked) await predecessor.locked;
    const locked = await lockSources(tx, [...new Set(active.map((c) => c.stream.sourceId))]);
    order?.ticket.markLocked();

    // Fencing across instances: the source's epoch moved on, so a newer stream owns it.
    // Seqs at or below the committed mark were written by an earlier attempt of this very flush.
    const committedMark = new Map<Contribution, string>();
    const writable: Contribution[] = [];
    for (const c of active) {
      const source = locked.get(c.stream.sourceId);
      if (!source || source.epoch !== c.stream.epoch) {
        outcome.fenced.add(c);
        excluded.add(c);
        continue;
      }
      committedMark.set(c, source.lastSeq);
      writable.push(c);
    }
    for (const c of writable) {
      // Every earlier window of the stream must have committed: its rows first, never a gap.
      if (c.maxSeq !== '' && compareSeq(committedMark.get(c)!, c.prevSeq) < 0) throw new PredecessorPendingError(c.stream.sourceId);
    }

    const earlierAttemptRows = writable.some((c) => c.minSeq !== '' && compareSeq(committedMark.get(c)!, c.minSeq) >= 0);
    if (excluded.size === 0 && !earlierAttemptRows && !isolate) {
      await this.copyWhole(tx, window, state);
    } else {
      await this.copyFiltered(tx, window, isolate, excluded, committedMark, outcome, state);
    }
    state.copyMs = performance.now() - copyStarted;
    await insertQuarantine(tx, quarantineRows(writable, committedMark, outcome));
    return { outcome, seals: sealsOf(writable, committedMark, (c) => locked.get(c.stream.sourceId)!.epoch) };
  }

  /** COPYs every row of the window. */
  private async copyWhole(tx: Transaction, window: BatchWindow, state: AttemptState): Promise<void> {
    for (const table of ['order_events', 'fills'] as const) {
      const { rows } = window.table(table);
      if (rows.rowCount === 0) continue;
      await copyEventRows(tx, table, rows.allChunks());
      state.rows += rows.rowCount;
      state.bytes += rows.byteLength;
    }
  }

  /**
   * COPYs the window without the rows of excluded (fenced) contributions and
   * without rows at or below their source's committed mark (an earlier
   * attempt of this flush committed them); bisecting when isolating.
   */
  private async copyFiltered(
    tx: Transaction,
    window: BatchWindow,
    isolate: boolean,
    excluded: ReadonlySet<Contribution>,
    committedMark: ReadonlyMap<Contribution, string>,
    outcome: FlushOutcome,
    state: AttemptState,
  ): Promise<void> {
    for (const table of ['order_events', 'fills'] as const) {
      const { rows, owners } = window.table(table);
      if (rows.rowCount === 0) continue;
      const indices: number[] = [];
      for (let i = 0; i < rows.rowCount; i++) {
        const c = owners[i]!;
        if (excluded.has(c)) continue;
        const mark = committedMark.get(c)!;
        if (c.minSeq !== '' && compareSeq(mark, c.minSeq) >= 0 && compareSeq(seqOfRow(rows.rowBytes(i)), mark) <= 0) continue;
        indices.push(i);
      }
      if (indices.length === 0) continue;
      if (isolate) await this.copyIsolating(tx, table, window, indices, outcome.refused);
      else await copyEventRows(tx, table, rows.chunksFor(indices));
      state.rows += indices.length;
      for (const i of indices) state.bytes += rows.rowBytes(i).length + 1;
    }
  }

  /**
   * COPYs the rows at `indices` under a savepoint; on a data error, rolls
   * back to it and tries each half, down to single rows, which are refused.
   * Rows that went in stay in (their savepoints were released).
   */
  private async copyIsolating(tx: Transaction, table: EventTable, window: BatchWindow, indices: number[], refused: Map<Contribution, PendingReject[]>): Promise<void> {
    const { rows, owners } = window.table(table);
    const tryRows = async (subset: number[]): Promise<void> => {
      try {
        await tx.savepoint((sp) => copyEventRows(sp, table, rows.chunksFor(subset)));
      } catch (err) {
        if (!isDataError(err)) throw err;
        if (subset.length === 1) {
          const index = subset[0]!;
          const owner = owners[index]!;
          const decoded = decodeEventRow(table, rows.rowBytes(index));
          const event: EventInput =
            decoded.table === 'order_events' ? { seq: decoded.seq, payload: 'order', order: decoded.order } : { seq: decoded.seq, payload: 'fill', fill: decoded.fill };
          const list = refused.get(owner) ?? [];
          list.push({ seq: decoded.seq, code: RejectCode.REJECT_CODE_STORAGE_REFUSED, reason: `the database refused the row: ${messageBehind(err)}`, raw: encodeEvent(event) });
          refused.set(owner, list);
          return;
        }
        const middle = subset.length >> 1;
        await tryRows(subset.slice(0, middle));
        await tryRows(subset.slice(middle));
      }
    };
    await tryRows(indices);
  }
}

/** Transaction over one connection; savepoints nest by name. */
class ConnectionTransaction implements Transaction {
  private savepoints = 0;

  constructor(private readonly conn: PooledConnection) {}

  query<R extends QueryResultRow>(options: QueryOptions | string, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    return this.conn.query<R>(options, sql, params);
  }

  copyFrom(options: QueryOptions | string, sql: string, source: Readable | Iterable<Buffer> | AsyncIterable<Buffer>): Promise<number> {
    return this.conn.copyFrom(options, sql, source);
  }

  async savepoint<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const name = `flush_${++this.savepoints}`;
    await this.conn.query({ op: 'ingest.flush.savepoint' }, `SAVEPOINT ${name}`);
    try {
      const result = await fn(this);
      await this.conn.query({ op: 'ingest.flush.release_savepoint' }, `RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (err) {
      if (!isTransportFailure(err)) await this.conn.query({ op: 'ingest.flush.rollback_savepoint' }, `ROLLBACK TO SAVEPOINT ${name}`);
      throw err;
    }
  }

  withTransaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.savepoint(fn);
  }
}

/** OF001 from orderflow_seal_window: a source's epoch or mark is not what the COPY-first attempt expected. */
function isSealRefusal(err: unknown): boolean {
  return sqlStateBehind(err) === SEAL_REFUSED_SQLSTATE;
}

/**
 * The rejects to quarantine, given each contribution's committed mark:
 * rejects at or below it were quarantined by an earlier attempt, and
 * rejects without a storable seq go in unless the whole contribution did.
 */
function quarantineRows(contributions: readonly Contribution[], mark: ReadonlyMap<Contribution, string>, outcome: FlushOutcome): QuarantineRow[] {
  const rows: QuarantineRow[] = [];
  for (const c of contributions) {
    const committed = mark.get(c)!;
    const wholeCommitted = c.maxSeq !== '' && compareSeq(committed, c.maxSeq) >= 0;
    const refused = outcome.refused.get(c);
    for (const list of refused ? [c.rejects, refused] : [c.rejects]) {
      for (const r of list) {
        if (isStorableSeq(r.seq) ? compareSeq(r.seq, committed) <= 0 : wholeCommitted) continue;
        rows.push({ sourceId: c.stream.sourceId, seq: r.seq, code: rejectCodeName(r.code), reason: r.reason, raw: r.raw });
      }
    }
  }
  return rows;
}

/**
 * One seal per source: the epoch and mark it must still have, and the mark
 * it gets (the contribution's last seq when above the mark). A source has at
 * most one contribution per window (one per stream, one stream per epoch).
 */
function sealsOf(contributions: readonly Contribution[], mark: ReadonlyMap<Contribution, string>, epochOf: (c: Contribution) => string): SourceSeal[] {
  return contributions.map((c) => {
    const committed = mark.get(c)!;
    const newMark = c.maxSeq !== '' && compareSeq(c.maxSeq, committed) > 0 ? c.maxSeq : committed;
    return { sourceId: c.stream.sourceId, epoch: epochOf(c), mark: committed, newMark };
  });
}

function untilDoneOrAborted(done: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve;
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([done, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
