import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Attributes, Context, Span } from '@opentelemetry/api';
import type pg from 'pg';
import { from as copyFromStream } from 'pg-copy-streams';
import { CancelledError, DbTimeoutError, DbUnavailableError, OrderflowError } from '../errors';
import { isConnectionLevelError, translatePgError } from './pg-errors';
import { sendCancelRequest, type CancelTarget } from './pool-cancel';
import type { QueryTracker } from './pool-query-tracker';
import type { QueryOptions } from './types';

/**
 * After an abort, how long the server gets to confirm the cancel (the
 * statement fails with 57014) before the connection is destroyed instead.
 */
export const ABORT_GRACE_MS = 2_000;
/** How long a graceful end (Terminate) may take before the socket is destroyed. */
const END_TIMEOUT_MS = 2_000;

const ONCE: AddEventListenerOptions = Object.freeze({ once: true });

/** What every connection of one pool shares. */
export interface ConnectionShared {
  readonly tracker: QueryTracker;
  /** Client-side timeout of a statement without its own `timeoutMs`, ms. */
  readonly queryTimeoutMs: number;
  /** Bound of a cancel request round trip, ms. */
  readonly cancelTimeoutMs: number;
  /** Server of the connections (cancel requests go there). */
  readonly target: CancelTarget;
  /** Called when an idle connection's socket dies, so the pool drops it at once. */
  onBroken(conn: PoolConnection): void;
}

/** The parts of pg.Client this module uses beyond its typings (stable across pg 8). */
interface PgClientInternals {
  processID: number | null;
  secretKey: number | null;
  _queryable: boolean;
  _ending: boolean;
  connection: { stream: { destroy(err?: Error): void } };
}

/** Where the pool keeps a connection. */
export type ConnectionState = 'idle' | 'busy' | 'destroyed';

type CopySource = Readable | Iterable<Buffer> | AsyncIterable<Buffer>;
type CopyStream = ReturnType<typeof copyFromStream>;

/**
 * One pooled pg.Client and the statement running on it. It runs one
 * statement at a time (later ones wait their turn) and owns everything that
 * happens to that statement: the client-side deadline (checked by the pool's
 * sweep, so no timer per statement), the AbortSignal (a cancel request, or
 * CopyFail for COPY), error translation and tracking. The statement's state
 * lives in fields rather than closures: a query allocates its promise and
 * pg's Query object, little else.
 *
 * A connection-level failure (dead socket, terminated backend, client-side
 * timeout, unconfirmed cancel) marks it broken for good; the pool destroys it
 * instead of reusing it.
 */
export class PoolConnection {
  /** Where the pool keeps it; managed by the pool. */
  state: ConnectionState = 'busy';
  /** Checkouts so far; managed by the pool. */
  uses = 0;
  /** performance.now() when it last became idle; managed by the pool. */
  idleSinceMs = 0;
  /** Set while a cancel request is in flight: the connection must not run anything else until it is confirmed. */
  cancelling: Promise<void> | undefined;

  private brokenBy: unknown;
  private readonly client: pg.Client & PgClientInternals;
  private readonly backlog: Array<() => void> = [];

  // The statement in flight.
  private active = false;
  private op = '';
  private sql = '';
  private span: Span | undefined;
  private startedMs = 0;
  private timeoutMs = 0;
  private deadlineMs = Infinity;
  private signal: AbortSignal | undefined;
  private abortRequested = false;
  private copyStream: CopyStream | undefined;
  private resolveActive: ((value: never) => void) | undefined;
  private rejectActive: ((err: unknown) => void) | undefined;

  private readonly onQueryDone = (err: Error | undefined, result: pg.QueryResult | pg.QueryResult[]): void => {
    // A late answer of a statement already settled by its deadline: ignore (the connection is broken by then).
    if (!this.active) return;
    if (err) this.fail(err);
    else this.complete(undefined, result, rowsOf(result));
  };

  private readonly onAbort = (): void => {
    if (!this.active || this.abortRequested) return;
    this.abortRequested = true;
    this.deadlineMs = Math.min(this.deadlineMs, performance.now() + ABORT_GRACE_MS);
    // COPY: destroy() sends CopyFail, which rolls the COPY back; the backend answers with 57014.
    if (this.copyStream) this.copyStream.destroy(new CancelledError());
    else this.requestCancel();
  };

  constructor(
    client: pg.Client,
    private readonly shared: ConnectionShared,
    /** performance.now() when the connection was opened. */
    readonly openedAtMs: number,
    /** performance.now() after which it is recycled (lifetime plus its own jitter); Infinity for never. */
    readonly expiresAtMs: number,
  ) {
    this.client = client as pg.Client & PgClientInternals;
    // pg emits 'error' for a socket error or a FATAL (pg_terminate_backend)
    // that arrives while no statement runs, and 'end' when the socket closes.
    client.on('error', (err) => this.markBroken(err));
    client.on('end', () => this.markBroken(new Error('Connection terminated')));
  }

  /** Backend process id. */
  get processId(): number | undefined {
    return this.client.processID ?? undefined;
  }

  /** True when the connection must be destroyed instead of reused. */
  get isBroken(): boolean {
    return this.brokenBy !== undefined || !this.client._queryable || this.client._ending;
  }

  /** True while a statement runs or waits its turn. */
  get isBusy(): boolean {
    return this.active || this.backlog.length > 0;
  }

  /** Transaction status of the last ReadyForQuery: I idle, T in transaction, E failed transaction. */
  get transactionStatus(): string | null {
    return this.client.getTransactionStatus();
  }

  /** Marks the connection unusable; an idle one is handed back to the pool to be destroyed. */
  markBroken(err: unknown): void {
    if (this.brokenBy === undefined) this.brokenBy = err ?? new Error('connection broken');
    if (this.state === 'idle') this.shared.onBroken(this);
  }

  /**
   * Runs one statement. `parent` is the trace context of its span (the
   * transaction's), `fallbackSignal` the transaction's signal, and
   * `spanAttributes` extra attributes of its span (a rollback's cause).
   */
  run<R extends pg.QueryResultRow>(
    options: QueryOptions | string,
    sql: string,
    params: readonly unknown[] | undefined,
    parent?: Context,
    fallbackSignal?: AbortSignal,
    spanAttributes?: Attributes,
  ): Promise<pg.QueryResult<R>> {
    if (this.active || this.cancelling !== undefined) {
      return this.nextTurn().then(() => this.run<R>(options, sql, params, parent, fallbackSignal, spanAttributes));
    }
    const refusal = this.refusal(options, fallbackSignal);
    if (refusal) return Promise.reject(refusal);
    return new Promise<pg.QueryResult<R>>((resolve, reject) => {
      this.begin(options, sql, parent, fallbackSignal, resolve, reject);
      if (spanAttributes !== undefined && this.span!.isRecording()) this.span!.setAttributes(spanAttributes);
      this.client.query(sql, params as unknown[], this.onQueryDone);
    });
  }

  /** Runs `COPY … FROM STDIN` and streams `source` into it; resolves with the rows the server reports. */
  copy(options: QueryOptions | string, sql: string, source: CopySource, parent?: Context, fallbackSignal?: AbortSignal): Promise<number> {
    if (this.active || this.cancelling !== undefined) return this.nextTurn().then(() => this.copy(options, sql, source, parent, fallbackSignal));
    const refusal = this.refusal(options, fallbackSignal);
    if (refusal) return Promise.reject(refusal);
    return new Promise<number>((resolve, reject) => {
      this.begin(options, sql, parent, fallbackSignal, resolve, reject);
      const stream = copyFromStream(sql);
      this.copyStream = stream;
      this.client.query(stream);
      // The stream settles only after the server answered (finish after
      // ReadyForQuery, destroy after the CopyFail's ErrorResponse), so the
      // connection is in a known state when the promise settles.
      const written = Array.isArray(source) ? writeAll(stream, source as readonly Buffer[]) : pipeline(source instanceof Readable ? source : Readable.from(source, { objectMode: false }), stream);
      written.then(
        () => {
          if (this.copyStream === stream) this.complete(undefined, stream.rowCount, stream.rowCount);
        },
        (err: unknown) => {
          if (this.copyStream === stream) this.fail(err);
        },
      );
    });
  }

  /** Called by the pool's sweep: fails the statement if it ran past its deadline. */
  checkDeadline(nowMs: number): void {
    if (this.active && nowMs >= this.deadlineMs) this.expire();
  }

  /**
   * Ends the client: gracefully (Terminate) when healthy and quiet, else by
   * destroying the socket. Resolves when the socket is closed; never rejects.
   */
  end(): Promise<void> {
    this.state = 'destroyed';
    const client = this.client;
    if (this.active || this.brokenBy !== undefined) client.connection.stream.destroy();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => client.connection.stream.destroy(), END_TIMEOUT_MS);
      timer.unref();
      client
        .end()
        .catch(() => undefined)
        .finally(() => {
          clearTimeout(timer);
          resolve();
        });
    });
  }

  /** Why a statement cannot start, if it cannot. */
  private refusal(options: QueryOptions | string, fallbackSignal: AbortSignal | undefined): OrderflowError | undefined {
    if (this.isBroken) return new DbUnavailableError({ cause: this.brokenBy });
    const signal = typeof options === 'string' ? fallbackSignal : (options.signal ?? fallbackSignal);
    if (signal?.aborted) return new CancelledError({ cause: signal.reason });
    return undefined;
  }

  private begin(
    options: QueryOptions | string,
    sql: string,
    parent: Context | undefined,
    fallbackSignal: AbortSignal | undefined,
    resolve: (value: never) => void,
    reject: (err: unknown) => void,
  ): void {
    let signal = fallbackSignal;
    let table: string | undefined;
    let timeoutMs = this.shared.queryTimeoutMs;
    if (typeof options === 'string') {
      this.op = options;
    } else {
      this.op = options.op;
      table = options.table;
      if (options.recordedSql !== undefined) sql = options.recordedSql;
      if (options.timeoutMs !== undefined) timeoutMs = options.timeoutMs;
      if (options.signal !== undefined) signal = fallbackSignal === undefined ? options.signal : AbortSignal.any([options.signal, fallbackSignal]);
    }
    this.active = true;
    this.sql = sql;
    this.startedMs = performance.now();
    this.timeoutMs = timeoutMs;
    this.deadlineMs = this.startedMs + timeoutMs;
    this.span = this.shared.tracker.start(this.op, sql, table, parent);
    this.resolveActive = resolve;
    this.rejectActive = reject;
    if (signal !== undefined) {
      this.signal = signal;
      signal.addEventListener('abort', this.onAbort, ONCE);
    }
  }

  private fail(err: unknown): void {
    if (isConnectionLevelError(err) && this.brokenBy === undefined) this.brokenBy = err;
    const error = this.abortRequested ? (err instanceof CancelledError ? err : new CancelledError({ cause: err })) : translatePgError(err);
    this.complete(error, undefined, 0);
  }

  private complete(err: OrderflowError | undefined, result: unknown, rows: number): void {
    const resolve = this.resolveActive!;
    const reject = this.rejectActive!;
    if (this.signal !== undefined) {
      this.signal.removeEventListener('abort', this.onAbort);
      this.signal = undefined;
    }
    const span = this.span!;
    this.active = false;
    this.abortRequested = false;
    this.deadlineMs = Infinity;
    this.copyStream = undefined;
    this.span = this.resolveActive = this.rejectActive = undefined;
    try {
      this.shared.tracker.finish(this.op, this.sql, span, this.startedMs, err, rows);
    } finally {
      if (err !== undefined) reject(err);
      else resolve(result as never);
      this.wakeNext();
    }
  }

  /**
   * The statement outlived its deadline: the network stalled or the server
   * hangs (statement_timeout should have fired first). Destroy the socket
   * (nothing else unblocks a stalled one) and fail now. The cancel request
   * is a courtesy to the server, in case only this socket is stuck; the
   * backend it targets dies with the socket, so a late cancel hits nothing.
   */
  private expire(): void {
    const aborted = this.abortRequested;
    const cause = new Error(
      aborted
        ? `The server did not confirm the cancel within ${ABORT_GRACE_MS} ms; the connection was destroyed.`
        : `No answer within the client-side query timeout of ${this.timeoutMs} ms; the connection was destroyed.`,
    );
    if (this.brokenBy === undefined) this.brokenBy = cause;
    const { processID, secretKey } = this.client;
    if (!aborted && processID !== null && secretKey !== null) void sendCancelRequest(this.shared.target, processID, secretKey, this.shared.cancelTimeoutMs);
    this.client.connection.stream.destroy();
    this.complete(aborted ? new CancelledError({ cause }) : new DbTimeoutError({ cause }), undefined, 0);
  }

  /**
   * Asks the server to cancel the running statement. Until the server has
   * confirmed, nothing else may run here: a cancel that arrived late would
   * hit the next statement instead.
   */
  private requestCancel(): void {
    const { processID, secretKey } = this.client;
    if (processID === null || secretKey === null || this.cancelling !== undefined) return;
    this.cancelling = sendCancelRequest(this.shared.target, processID, secretKey, this.shared.cancelTimeoutMs).then((confirmed) => {
      this.cancelling = undefined;
      // Unconfirmed: it may still arrive and cancel an innocent later statement.
      if (!confirmed) this.markBroken(new Error('The cancel request was not confirmed by the server.'));
      this.wakeNext();
    });
  }

  private nextTurn(): Promise<void> {
    return new Promise<void>((resolve) => this.backlog.push(resolve));
  }

  private wakeNext(): void {
    if (!this.active && this.cancelling === undefined) this.backlog.shift()?.();
  }
}

/** Rows a statement returned or touched; the last result's for multi-statement text. */
function rowsOf(result: pg.QueryResult | pg.QueryResult[] | undefined): number {
  if (result === undefined) return 0;
  const last = Array.isArray(result) ? result[result.length - 1] : result;
  return last?.rowCount ?? 0;
}

/**
 * Writes buffers already in memory to `stream` and ends it; settles as
 * pipeline() would (on finish, or on the first error or an early close),
 * without the AbortController and DOMException pipeline() makes per call,
 * which an ingest flush (one COPY each) paid for nothing.
 */
function writeAll(stream: Writable, chunks: readonly Buffer[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const settle = (err: unknown) => {
      stream.off('finish', onFinish);
      stream.off('close', onClose);
      // A late error must not become an unhandled 'error' event.
      stream.off('error', settle);
      stream.on('error', ignore);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onFinish = () => settle(undefined);
    const onClose = () => settle(new Error('COPY stream closed before it finished'));
    stream.on('error', settle);
    stream.once('finish', onFinish);
    stream.once('close', onClose);
    for (const chunk of chunks) stream.write(chunk);
    stream.end();
  });
}

function ignore(): void {}
