import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { InvalidArgumentError, OrderflowError, type ErrorCode } from '../errors';
import { getTracer } from '../telemetry/tracing';
import { batchChunkDurationSeconds, batchChunksTotal, batchRowsTotal, type ChunkOutcomeLabel } from './batch-metrics';
import { sqlStateOf, translatePgError } from './pg-errors';

/** Rows per chunk when the caller does not say. */
export const DEFAULT_BATCH_CHUNK_SIZE = 1_000;
/** Chunks in flight at once when the caller does not say. */
export const DEFAULT_BATCH_CONCURRENCY = 4;
/** Failures kept in a report; more are counted but not listed, so memory stays bounded. */
export const DEFAULT_MAX_REPORTED_FAILURES = 1_000;

/** Rows or keys to process: arrays, iterables, async iterables and object-mode streams. Pulled lazily. */
export type BatchInput<T> = Iterable<T> | AsyncIterable<T>;

/** What to do after a chunk fails: start no further chunk, or carry on with the rest. */
export type BatchErrorMode = 'stop' | 'continue';

/** How a batch ended. */
export type BatchOutcome = 'completed' | 'stopped' | 'aborted';

/** Options of runBatch. */
export interface BatchOptions {
  /** Short, fixed operation name (metrics label, span name), e.g. `purge.fills`. Never an id. */
  op: string;
  /** Rows per chunk, at least 1. Default DEFAULT_BATCH_CHUNK_SIZE (1,000). */
  chunkSize?: number;
  /** Most chunks running at once, at least 1. Default DEFAULT_BATCH_CONCURRENCY (4). */
  concurrency?: number;
  /** `stop` (default): after the first failure no chunk starts. `continue`: every chunk runs. */
  onError?: BatchErrorMode;
  /** Aborting starts no new chunk and aborts the running ones' statements (through the pool). */
  signal?: AbortSignal;
  /** Called synchronously as each chunk ends, in completion order. Must not throw. */
  onChunk?: (result: ChunkResult) => void;
  /** Most failures listed in the report. Default DEFAULT_MAX_REPORTED_FAILURES (1,000). */
  maxReportedFailures?: number;
}

/** What a chunk function is given besides its rows. */
export interface ChunkContext {
  /** 0-based chunk number, in input order. */
  index: number;
  /** 0-based position in the input of the chunk's first row. */
  firstRow: number;
  /** Aborted when the batch is aborted: pass it to every pool call. */
  signal: AbortSignal;
}

/**
 * Processes one chunk. Resolves with the number of rows the database reported
 * (inserted, updated, deleted, selected), or nothing. Rejects to fail the chunk.
 */
export type ChunkFn<T> = (rows: readonly T[], context: ChunkContext) => Promise<number | void>;

/** A failed chunk: where it is in the input and why it failed. */
export interface ChunkFailure {
  /** 0-based chunk number. */
  index: number;
  /** 0-based input positions of the chunk's first and last rows (inclusive). */
  firstRow: number;
  lastRow: number;
  /** Domain error code from db/pg-errors.ts (`DUPLICATE`, `DB_TIMEOUT`, `CANCELLED`, `INTERNAL` …). */
  code: ErrorCode;
  /** PostgreSQL SQLSTATE when the database raised the error (`23505`, `23514`, `57014` …). */
  sqlState: string | undefined;
  /** The database's message (or the error's), e.g. `new row … violates check constraint "t_v_check"`. */
  message: string;
  /** Constraint named by the database, when any. */
  constraint: string | undefined;
  /** The translated error, for callers that need more. */
  error: Error;
}

/** One chunk's end, as passed to `onChunk`. */
export interface ChunkResult {
  index: number;
  firstRow: number;
  rows: number;
  /** Rows the database reported for the chunk (0 when it failed). */
  affected: number;
  durationMs: number;
  /** Set when the chunk failed. */
  failure?: ChunkFailure;
}

/** What a batch did. */
export interface BatchReport {
  op: string;
  outcome: BatchOutcome;
  /** Input rows of chunks that succeeded. */
  rowsDone: number;
  /** Sum of what the succeeded chunks' functions returned (rows inserted, updated, deleted, selected). */
  rowsAffected: number;
  /** Input rows of chunks that failed. */
  rowsFailed: number;
  chunksStarted: number;
  chunksDone: number;
  chunksFailed: number;
  /** Failed chunks in completion order, at most `maxReportedFailures`. */
  failures: ChunkFailure[];
  /** True when more chunks failed than `failures` lists. */
  failuresTruncated: boolean;
  /** Most chunks that ran at once. */
  maxInFlight: number;
  /** Longest chunk, ms: for single-statement chunks, the longest lock hold. */
  maxChunkMs: number;
  durationMs: number;
}

interface ResolvedOptions {
  op: string;
  chunkSize: number;
  concurrency: number;
  onError: BatchErrorMode;
  maxReportedFailures: number;
  onChunk: ((result: ChunkResult) => void) | undefined;
}

/**
 * Runs `fn` over `input` in chunks of `chunkSize` rows, at most `concurrency`
 * chunks at once, and reports what succeeded and what failed.
 *
 * Memory: the input is pulled only when a chunk slot is free, so at most
 * `(concurrency + 1) × chunkSize` rows are held, whatever the input's size.
 *
 * Failures: each chunk is independent (its own statement or transaction). In
 * `stop` mode no chunk starts once a failure has been seen; chunks already
 * running are left to finish (they are all-or-nothing, so each either applies
 * entirely or not at all) and are reported as they end. In `continue` mode
 * every chunk runs.
 *
 * Abort: no chunk starts after `signal` fires; running chunks get the aborted
 * signal (the pool cancels their statements on the server) and are awaited,
 * so no connection is still busy when this resolves. Chunks that fail after
 * the abort are reported with code `CANCELLED`.
 *
 * Throws only when the input itself fails (a read or parse error), after the
 * running chunks have ended; chunks that committed before stay committed.
 */
export async function runBatch<T>(input: BatchInput<T>, fn: ChunkFn<T>, options: BatchOptions): Promise<BatchReport> {
  const opts = resolveOptions(options);
  const runner = new BatchRunner(opts, fn, options.signal);
  return getTracer().startActiveSpan(`batch ${opts.op}`, { kind: SpanKind.INTERNAL, attributes: { 'orderflow.batch.operation': opts.op } }, async (span) => {
    try {
      const report = await runner.run(input);
      span.setAttributes({
        'orderflow.batch.outcome': report.outcome,
        'orderflow.batch.rows_done': report.rowsDone,
        'orderflow.batch.chunks_done': report.chunksDone,
        'orderflow.batch.chunks_failed': report.chunksFailed,
      });
      if (report.chunksFailed > 0) span.setStatus({ code: SpanStatusCode.ERROR, message: `${report.chunksFailed} chunk(s) failed` });
      return report;
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  });
}

function resolveOptions(options: BatchOptions): ResolvedOptions {
  const chunkSize = options.chunkSize ?? DEFAULT_BATCH_CHUNK_SIZE;
  const concurrency = options.concurrency ?? DEFAULT_BATCH_CONCURRENCY;
  const maxReportedFailures = options.maxReportedFailures ?? DEFAULT_MAX_REPORTED_FAILURES;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new InvalidArgumentError('chunkSize', 'must be a whole number ≥ 1');
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new InvalidArgumentError('concurrency', 'must be a whole number ≥ 1');
  if (!Number.isSafeInteger(maxReportedFailures) || maxReportedFailures < 0) throw new InvalidArgumentError('maxReportedFailures', 'must be a whole number ≥ 0');
  if (!options.op) throw new InvalidArgumentError('op', 'must be a non-empty operation name');
  return { op: options.op, chunkSize, concurrency, onError: options.onError ?? 'stop', maxReportedFailures, onChunk: options.onChunk };
}

/** One run of runBatch: the scheduling loop and the report it fills. */
class BatchRunner<T> {
  private readonly report: BatchReport;
  private readonly abort = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly fn: ChunkFn<T>,
    private readonly callerSignal: AbortSignal | undefined,
  ) {
    this.report = {
      op: opts.op,
      outcome: 'completed',
      rowsDone: 0,
      rowsAffected: 0,
      rowsFailed: 0,
      chunksStarted: 0,
      chunksDone: 0,
      chunksFailed: 0,
      failures: [],
      failuresTruncated: false,
      maxInFlight: 0,
      maxChunkMs: 0,
      durationMs: 0,
    };
  }

  async run(input: BatchInput<T>): Promise<BatchReport> {
    const started = performance.now();
    const onAbort = (): void => {
      this.abort.abort(this.callerSignal?.reason);
      this.notify();
    };
    if (this.callerSignal?.aborted) onAbort();
    else this.callerSignal?.addEventListener('abort', onAbort, { once: true });

    const chunks = chunked(input, this.opts.chunkSize);
    let inputError: unknown;
    let index = 0;
    let firstRow = 0;
    try {
      for (;;) {
        if (this.shouldStop()) break;
        if (this.running.size >= this.opts.concurrency) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        const next = await this.nextUnlessAborted(chunks);
        if (next === undefined || next.done) break;
        // A failure or an abort may have come while the input was read: the
        // chunk just pulled is then never started.
        if (this.shouldStop()) break;
        this.start(next.value, index++, firstRow);
        firstRow += next.value.length;
      }
    } catch (err) {
      inputError = err;
    } finally {
      this.callerSignal?.removeEventListener('abort', onAbort);
      // Closes the source (a file stream, a cursor) when we stopped early. Not
      // awaited: a read still pending after an abort would delay the report.
      chunks.return(undefined).catch(() => undefined);
    }
    await Promise.allSettled([...this.running]);
    this.report.durationMs = performance.now() - started;
    if (this.abort.signal.aborted) this.report.outcome = 'aborted';
    else if (this.stopped) this.report.outcome = 'stopped';
    if (inputError !== undefined) throw inputError;
    return this.report;
  }

  private shouldStop(): boolean {
    return this.stopped || this.abort.signal.aborted;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** The next chunk, or undefined when the batch is aborted while the input is being read. */
  private nextUnlessAborted(chunks: AsyncGenerator<T[]>): Promise<IteratorResult<T[]> | undefined> {
    const next = chunks.next();
    if (this.abort.signal.aborted) {
      next.catch(() => undefined);
      return Promise.resolve(undefined);
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        next.catch(() => undefined);
        resolve(undefined);
      };
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      next.then(
        (value) => {
          this.abort.signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          this.abort.signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  private start(rows: T[], index: number, firstRow: number): void {
    this.report.chunksStarted++;
    const promise = this.runChunk(rows, index, firstRow).finally(() => {
      this.running.delete(promise);
      this.notify();
    });
    this.running.add(promise);
    this.report.maxInFlight = Math.max(this.report.maxInFlight, this.running.size);
  }

  private async runChunk(rows: T[], index: number, firstRow: number): Promise<void> {
    const { op } = this.opts;
    const attributes = {
      'db.operation.batch.size': rows.length,
      'orderflow.batch.operation': op,
      'orderflow.batch.chunk.index': index,
      'orderflow.batch.chunk.first_row': firstRow,
    };
    await getTracer().startActiveSpan(`batch.chunk ${op}`, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
      const started = performance.now();
      let affected = 0;
      let failure: ChunkFailure | undefined;
      try {
        affected = (await this.fn(rows, { index, firstRow, signal: this.abort.signal })) ?? 0;
      } catch (err) {
        failure = describeFailure(err, index, firstRow, rows.length, this.abort.signal.aborted);
        recordFailure(span, failure);
      }
      const durationMs = performance.now() - started;
      span.setAttribute('orderflow.batch.chunk.affected', affected);
      span.end();
      this.settle({ index, firstRow, rows: rows.length, affected, durationMs, failure });
    });
  }

  /** Books one finished chunk into the report, metrics and the caller's callback. */
  private settle(result: ChunkResult): void {
    const { op } = this.opts;
    const { report } = this;
    const outcome: ChunkOutcomeLabel = result.failure === undefined ? 'ok' : result.failure.code === 'CANCELLED' ? 'cancelled' : 'error';
    batchChunksTotal.inc({ operation: op, outcome });
    batchChunkDurationSeconds.observe({ operation: op }, result.durationMs / 1_000);
    report.maxChunkMs = Math.max(report.maxChunkMs, result.durationMs);
    if (result.failure === undefined) {
      batchRowsTotal.inc({ operation: op }, result.rows);
      report.chunksDone++;
      report.rowsDone += result.rows;
      report.rowsAffected += result.affected;
    } else {
      report.chunksFailed++;
      report.rowsFailed += result.rows;
      if (report.failures.length < this.opts.maxReportedFailures) report.failures.push(result.failure);
      else report.failuresTruncated = true;
      // Set before any other chunk can be scheduled: the loop only resumes
      // after notify(), which runs after this.
      if (this.opts.onError === 'stop') this.stopped = true;
    }
    try {
      this.opts.onChunk?.(result);
    } catch {
      // A progress callback must never break the batch.
    }
  }
}

/** Groups the input into arrays of `size`, pulling lazily. */
async function* chunked<T>(input: BatchInput<T>, size: number): AsyncGenerator<T[]> {
  if (Array.isArray(input)) {
    for (let i = 0; i < input.length; i += size) yield input.slice(i, i + size) as T[];
    return;
  }
  let chunk: T[] = [];
  if (Symbol.asyncIterator in input) {
    for await (const row of input as AsyncIterable<T>) {
      chunk.push(row);
      if (chunk.length >= size) {
        yield chunk;
        chunk = [];
      }
    }
  } else {
    for (const row of input as Iterable<T>) {
      chunk.push(row);
      if (chunk.length >= size) {
        yield chunk;
        chunk = [];
      }
    }
  }
  if (chunk.length > 0) yield chunk;
}

/** Turns whatever a chunk threw into a report entry, via the one SQLSTATE translator. */
export function describeFailure(err: unknown, index: number, firstRow: number, rows: number, aborted: boolean): ChunkFailure {
  const translated = translatePgError(err);
  const pgCause = findPgCause(err);
  const sqlState = sqlStateOf(pgCause) ?? (translated as { sqlState?: string }).sqlState;
  const message = (pgCause as Error | undefined)?.message ?? (err as Error | undefined)?.message ?? String(err);
  return {
    index,
    firstRow,
    lastRow: firstRow + rows - 1,
    // An abort surfaces as 57014 (query_canceled), a CopyFail or an AbortError,
    // depending on where the statement was; all of them mean "cancelled".
    code: aborted ? 'CANCELLED' : translated.code,
    sqlState,
    message,
    constraint: (pgCause as { constraint?: string } | undefined)?.constraint,
    error: translated,
  };
}

/** The node-postgres error inside a (possibly translated) error, found through `cause`. */
function findPgCause(err: unknown): unknown {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    // Domain errors report their cause's SQLSTATE too; the raw driver error is the one with the message and constraint.
    if (!(current instanceof OrderflowError) && sqlStateOf(current) !== undefined) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function recordFailure(span: Span, failure: ChunkFailure): void {
  span.recordException(failure.error);
  span.setAttribute('error.type', failure.sqlState ?? failure.code);
  if (failure.sqlState !== undefined) span.setAttribute('db.response.status_code', failure.sqlState);
  span.setStatus({ code: SpanStatusCode.ERROR, message: failure.code });
}
