import type { SpanContext } from '@opentelemetry/api';
import type { IngestConfig } from '../config';
import { FencedError, ShuttingDownError } from '../errors';
import { RejectCode } from '../generated/orderflow/v1/RejectCode';
import type { FlushHooks } from '../store/change-set';
import type { SourceState } from '../store/sources';
import type { Logger } from '../telemetry/logger';
import { BatchWindow, type Contribution, type PendingReject } from './batch-window';
import type { EventBatchInput } from './event';
import { FlushTicket } from './flush-order';
import type { BatchSink, FlushOutcome } from './flush-writer';
import { IngestStream, type StreamSink } from './ingest-stream';
import { ingestMetrics } from './metrics';
import { compareSeq } from './sequencer';
import { validateEvent } from './validate';
import { rawEventBytes } from './wire-format';

/** Life cycle of the pipeline. */
export type PipelineState = 'RUNNING' | 'DRAINING' | 'CLOSED';

/** Opens a source for a new stream (bumps its epoch); store/sources.ts openSource in production. */
export type SourceOpener = (sourceId: string) => Promise<SourceState>;

/** Everything the pipeline needs. */
export interface IngestPipelineOptions {
  config: IngestConfig;
  /** Writes windows durably (the FlushWriter). */
  sink: BatchSink;
  openSource: SourceOpener;
  /** Read-path hooks; afterCommit runs after COMMIT, before acks. Default: none. */
  hooks?: FlushHooks;
  logger: Logger;
}

/** Windows kept for reuse (their buffers are the expensive part). */
const SPARE_WINDOWS = 4;

/** A flush in flight. */
interface InFlightFlush {
  window: BatchWindow;
  ticket: FlushTicket;
  /** Settles once its outcome was handled (acks sent) and it left the pipeline. */
  completed: Promise<void>;
}

/**
 * The group-commit pipeline. Events of every open stream go into one batch
 * window; a window closes when it holds INGEST_BATCH_MAX_ROWS events or
 * INGEST_BATCH_MAX_BYTES bytes, or INGEST_BATCH_MAX_MS after its first event.
 * Up to INGEST_FLUSH_PIPELINE_DEPTH flushes are in flight while the next
 * window fills, each COPYing while the one before it commits. Flushes of one
 * source still commit in window order (flush-order.ts): a later flush raising
 * the high-water mark first would make the earlier one's events look like
 * duplicates on a retry. Outcomes are handled in window order: after a
 * commit, the afterCommit hook, then for each stream its Rejects and one Ack.
 *
 * Buffered-but-uncommitted events are bounded per stream and overall; past a
 * bound the stream's transport is paused, and resumed once commits bring it
 * back under.
 */
export class IngestPipeline {
  private stateValue: PipelineState = 'RUNNING';
  private readonly registry = new Map<string, IngestStream>();
  private current: BatchWindow | undefined;
  private readonly queue: BatchWindow[] = [];
  private readonly spare: BatchWindow[] = [];
  private readonly inFlight: InFlightFlush[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private bufferedTotal = 0;
  private readonly paused = new Set<IngestStream>();
  private readonly drainWaiters = new Map<IngestStream, (() => void)[]>();
  private readonly abort = new AbortController();
  private windowCounter = 0;
  private closePromise: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly hooks: FlushHooks;

  constructor(private readonly options: IngestPipelineOptions) {
    this.hooks = options.hooks ?? {};
  }

  get state(): PipelineState {
    return this.stateValue;
  }

  /** Events received and not yet committed or dropped, over all streams. */
  get bufferedEvents(): number {
    return this.bufferedTotal;
  }

  /**
   * Opens a stream for `sourceId`. A stream already open for the source here
   * is fenced first (its unflushed events dropped, its in-flight flush
   * awaited); then the source's epoch is bumped in the database. Resolves
   * with the stream, whose `committedSeq` is the Welcome's last_committed_seq.
   * Rejects with FencedError when a still newer Hello took over meanwhile,
   * ShuttingDownError when closing, or the database error.
   */
  async openStream(sourceId: string, sink: StreamSink, spanContext?: SpanContext): Promise<IngestStream> {
    if (this.stateValue !== 'RUNNING') throw new ShuttingDownError('ingest pipeline');
    const stream = new IngestStream(sourceId, sink, spanContext);
    const previous = this.registry.get(sourceId);
    this.registry.set(sourceId, stream);
    const opening = (async () => {
      if (previous) {
        this.fence(previous);
        await previous.opening.catch(() => undefined);
        await this.settledFlushOf(previous);
      }
      if (stream.state !== 'OPENING') throw new FencedError(sourceId);
      const source = await this.options.openSource(sourceId);
      if (stream.state !== 'OPENING') throw new FencedError(sourceId);
      stream.epoch = source.epoch;
      stream.sequencer.highestSeen = source.lastSeq;
      stream.committedSeq = source.lastSeq;
      stream.placedSeq = source.lastSeq;
      stream.state = 'OPEN';
      return stream;
    })();
    stream.opening = opening;
    try {
      return await opening;
    } catch (err) {
      if (this.registry.get(sourceId) === stream) this.registry.delete(sourceId);
      if (stream.state === 'OPENING') stream.state = 'CLOSED';
      throw err;
    }
  }

  /**
   * Takes one EventBatch of an open stream: sequence, validate and encode
   * each event into the current window. Duplicates are counted; when a
   * message held only duplicates and nothing of the stream is pending, it is
   * acked at once. Throws ShuttingDownError once the pipeline is closed.
   */
  submit(stream: IngestStream, batch: EventBatchInput, receivedAtMs: number): void {
    if (this.stateValue === 'CLOSED') throw new ShuttingDownError('ingest pipeline');
    if (stream.state !== 'OPEN') return;
    const events = batch.events;
    const count = events.length;
    if (count === 0) return;
    ingestMetrics.events.inc({ outcome: 'received' }, count);
    const { batchMaxRows, batchMaxBytes } = this.options.config;
    let window = this.windowForAppend();
    // Created on the first event that lands in the window, so an all-duplicate message leaves none behind.
    let c: Contribution | undefined;
    let added = 0;
    let duplicates = 0;
    const sequencer = stream.sequencer;
    for (let i = 0; i < count; i++) {
      const ev = events[i]!;
      const verdict = sequencer.accept(ev.seq);
      if (verdict === 'DUPLICATE') {
        duplicates++;
        continue;
      }
      c ??= window.contributionOf(stream);
      if (verdict === 'INVALID') {
        window.addReject(c, { seq: ev.seq, code: RejectCode.REJECT_CODE_INVALID_SEQ, reason: 'seq must be between 1 and 9223372036854775807', raw: rawEventBytes(ev) });
      } else if (ev.wireFill) {
        // Left in its bytes by the wire decoder only when plain and valid.
        window.addWireFill(c, ev.seq, ev.wireFill);
      } else if (ev.wireOrder) {
        window.addWireOrder(c, ev.seq, ev.wireOrder);
      } else {
        const invalid = validateEvent(ev);
        if (invalid) window.addReject(c, { seq: ev.seq, code: invalid.code, reason: invalid.reason, raw: rawEventBytes(ev) });
        else if (ev.payload === 'order') window.addOrder(c, ev.seq, ev.order!);
        else window.addFill(c, ev.seq, ev.fill!);
      }
      added++;
      if (window.events >= batchMaxRows || window.bytes >= batchMaxBytes) {
        this.account(stream, added);
        added = 0;
        this.closeCurrent();
        window = this.windowForAppend();
        c = undefined;
      }
    }
    this.account(stream, added);
    if (duplicates > 0) {
      ingestMetrics.events.inc({ outcome: 'duplicate' }, duplicates);
      stream.unackedDuplicates += duplicates;
    }
    if (stream.buffered === 0) {
      // Nothing of this stream is pending: the duplicates can be acked now.
      if (stream.unackedDuplicates > 0) {
        stream.sink.sendAck({ committed_seq: stream.committedSeq, stored: 0, rejected: 0, duplicates: stream.unackedDuplicates });
        stream.unackedDuplicates = 0;
      }
      ingestMetrics.ackLatency.observe((performance.now() - receivedAtMs) / 1000);
    } else {
      stream.pendingMessages.push({ seq: sequencer.highestSeen, receivedAtMs });
    }
    if (!window.isEmpty) this.armTimer(window);
    this.applyBackpressure(stream);
  }

  /**
   * Resolves once nothing of `stream` is buffered (every event it sent is
   * committed and acked, or dropped); used when the client half-closes.
   */
  whenDrained(stream: IngestStream): Promise<void> {
    if (stream.buffered === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.drainWaiters.get(stream) ?? [];
      list.push(resolve);
      this.drainWaiters.set(stream, list);
    });
  }

  /**
   * The stream's transport is gone (cancelled, ended, fenced). Its buffered
   * events still commit unless it was fenced; nothing more is sent to it.
   */
  detach(stream: IngestStream): void {
    if (stream.state === 'OPEN' || stream.state === 'OPENING') stream.state = 'CLOSED';
    if (this.registry.get(stream.sourceId) === stream) this.registry.delete(stream.sourceId);
    this.paused.delete(stream);
  }

  /**
   * Shutdown: stop taking streams, flush everything buffered (acks go out as
   * each flush commits), retrying failed flushes until `graceMs` passes; what
   * is still unflushed then is dropped unacked (clients resend it after
   * reconnecting). Idempotent.
   */
  close(graceMs: number): Promise<void> {
    if (!this.closePromise) this.closePromise = this.shutdown(graceMs);
    return this.closePromise;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.stateValue = 'DRAINING';
    const deadline = setTimeout(() => this.abort.abort(), graceMs);
    deadline.unref();
    try {
      this.closeCurrent();
      await this.whenIdle();
    } finally {
      clearTimeout(deadline);
      this.abort.abort();
      this.clearTimers();
      this.stateValue = 'CLOSED';
    }
  }

  private whenIdle(): Promise<void> {
    if (this.inFlight.length === 0 && this.queue.length === 0 && (!this.current || this.current.isEmpty)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private windowForAppend(): BatchWindow {
    if (!this.current) {
      const window = this.spare.pop() ?? new BatchWindow();
      window.id = ++this.windowCounter;
      window.openedAtMs = performance.now();
      this.current = window;
    }
    return this.current;
  }

  private account(stream: IngestStream, events: number): void {
    if (events === 0) return;
    stream.buffered += events;
    this.bufferedTotal += events;
    ingestMetrics.bufferedEvents.inc(events);
  }

  private armTimer(window: BatchWindow): void {
    if (window.timerArmed) return;
    window.timerArmed = true;
    const fire = () => {
      this.timer = undefined;
      this.immediate = undefined;
      if (this.current === window) {
        window.due = true;
        this.maybeFlush();
      }
    };
    const { batchMaxMs } = this.options.config;
    if (batchMaxMs === 0) {
      this.immediate = setImmediate(fire);
      this.immediate.unref();
    } else {
      this.timer = setTimeout(fire, batchMaxMs);
      this.timer.unref();
    }
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  /** Moves the current window (if any events) to the flush queue. */
  private closeCurrent(): void {
    const window = this.current;
    if (!window) return;
    this.current = undefined;
    this.clearTimers();
    if (window.isEmpty) {
      window.reset();
      this.spare.push(window);
      return;
    }
    this.queue.push(window);
    this.maybeFlush();
  }

  private maybeFlush(): void {
    while (this.inFlight.length < this.options.config.flushPipelineDepth) {
      let window = this.queue.shift();
      if (!window && this.current && !this.current.isEmpty && (this.current.due || this.stateValue !== 'RUNNING')) {
        window = this.current;
        this.current = undefined;
        this.clearTimers();
      }
      if (!window) break;
      this.startFlush(window);
    }
    if (!this.current || this.current.isEmpty) this.notifyIdle();
  }

  private startFlush(window: BatchWindow): void {
    const predecessor = this.inFlight[this.inFlight.length - 1];
    const ticket = new FlushTicket();
    const flush: InFlightFlush = { window, ticket, completed: Promise.resolve() };
    flush.completed = this.runFlush(window, ticket, predecessor).finally(() => {
      this.inFlight.splice(this.inFlight.indexOf(flush), 1);
      this.recycle(window);
      this.maybeFlush();
    });
    this.inFlight.push(flush);
  }

  private async runFlush(window: BatchWindow, ticket: FlushTicket, predecessor: InFlightFlush | undefined): Promise<void> {
    let outcome: FlushOutcome;
    try {
      outcome = await this.options.sink.write(window, this.abort.signal, { predecessor: predecessor?.ticket, ticket });
    } catch (err) {
      // The sink retries internally and should never reject; treat a rejection as abandoned.
      this.options.logger.error({ err, window: window.id }, 'flush writer failed unexpectedly; events stay unacked');
      outcome = { committed: false, fenced: new Set(), refused: new Map() };
    } finally {
      ticket.markDone();
    }
    ingestMetrics.batchRows.observe(window.events);
    ingestMetrics.batchBytes.observe(window.bytes);
    // Acks go out in window order, whichever commit PostgreSQL answered first.
    if (predecessor) await predecessor.completed;
    this.complete(window, outcome);
  }

  /** After a flush: invalidate, then Rejects and one Ack per stream; release the backpressure budget. */
  private complete(window: BatchWindow, outcome: FlushOutcome): void {
    if (outcome.committed && this.hooks.afterCommit) {
      try {
        this.hooks.afterCommit(window.changeSet());
      } catch (err) {
        this.options.logger.error({ err }, 'afterCommit hook threw; continuing with acks');
      }
    }
    const now = performance.now();
    let stored = 0;
    let rejected = 0;
    for (const c of window.contributions) {
      const stream = c.stream;
      const events = c.events;
      stream.buffered -= events;
      this.bufferedTotal -= events;
      ingestMetrics.bufferedEvents.dec(events);
      if (outcome.fenced.has(c) || (!outcome.committed && this.stateValue === 'RUNNING')) {
        // Not committed while running means the writer gave up unexpectedly: the stream
        // is ended so its client resumes from the committed mark. Its later windows must
        // not commit over the hole (their seqs would make these events look like duplicates).
        this.fence(stream);
        continue;
      }
      if (!outcome.committed || stream.state === 'FENCED') continue;
      const refused = outcome.refused.get(c);
      const rejectedHere = c.rejects.length + (refused?.length ?? 0);
      stored += c.rows - (refused?.length ?? 0);
      rejected += rejectedHere;
      if (c.maxSeq !== '' && compareSeq(c.maxSeq, stream.committedSeq) > 0) stream.committedSeq = c.maxSeq;
      if (stream.state !== 'OPEN') continue;
      this.sendRejects(stream, c, refused);
      stream.sink.sendAck({ committed_seq: stream.committedSeq, stored: c.rows - (refused?.length ?? 0), rejected: rejectedHere, duplicates: stream.unackedDuplicates });
      stream.unackedDuplicates = 0;
      const pending = stream.pendingMessages;
      let acked = 0;
      while (acked < pending.length && compareSeq(pending[acked]!.seq, stream.committedSeq) <= 0) {
        ingestMetrics.ackLatency.observe((now - pending[acked]!.receivedAtMs) / 1000);
        acked++;
      }
      if (acked > 0) pending.splice(0, acked);
    }
    if (stored > 0) ingestMetrics.events.inc({ outcome: 'stored' }, stored);
    if (rejected > 0) ingestMetrics.events.inc({ outcome: 'rejected' }, rejected);
    for (const c of window.contributions) {
      const stream = c.stream;
      if (stream.buffered === 0) {
        const waiters = this.drainWaiters.get(stream);
        if (waiters) {
          this.drainWaiters.delete(stream);
          for (const resolve of waiters) resolve();
        }
      }
    }
    this.releaseBackpressure();
  }

  private sendRejects(stream: IngestStream, c: Contribution, refused: PendingReject[] | undefined): void {
    let rejects: PendingReject[] = c.rejects;
    if (refused && refused.length > 0) rejects = [...c.rejects, ...refused].sort((a, b) => compareSeq(a.seq, b.seq));
    for (const r of rejects) stream.sink.sendReject({ seq: r.seq, code: r.code, reason: r.reason });
  }

  private recycle(window: BatchWindow): void {
    window.reset();
    if (this.spare.length < SPARE_WINDOWS) this.spare.push(window);
  }

  private applyBackpressure(stream: IngestStream): void {
    if (stream.paused || stream.state !== 'OPEN') return;
    const { streamMaxBuffered, maxBuffered } = this.options.config;
    if (stream.buffered >= streamMaxBuffered || this.bufferedTotal >= maxBuffered) {
      stream.paused = true;
      this.paused.add(stream);
      ingestMetrics.backpressurePauses.inc();
      stream.sink.pause();
    }
  }

  private releaseBackpressure(): void {
    if (this.paused.size === 0) return;
    const { streamMaxBuffered, maxBuffered } = this.options.config;
    if (this.bufferedTotal >= maxBuffered) return;
    for (const stream of this.paused) {
      if (stream.buffered < streamMaxBuffered) {
        this.paused.delete(stream);
        stream.paused = false;
        if (stream.state === 'OPEN' && this.stateValue === 'RUNNING') stream.sink.resume();
      }
    }
  }

  /** Fences `stream`: a newer stream owns its source. Its unflushed events are dropped at flush time. */
  private fence(stream: IngestStream): void {
    if (stream.state === 'FENCED') return;
    const wasLive = stream.isLive;
    stream.state = 'FENCED';
    this.paused.delete(stream);
    if (this.registry.get(stream.sourceId) === stream) this.registry.delete(stream.sourceId);
    ingestMetrics.fencedStreams.inc();
    if (wasLive) stream.sink.fenced();
  }

  /** Resolves when no flush carrying events of `stream` is in flight. */
  private async settledFlushOf(stream: IngestStream): Promise<void> {
    const carrying = this.inFlight.filter((f) => f.window.contributions.some((c) => c.stream === stream));
    await Promise.all(carrying.map((f) => f.completed));
  }

  private notifyIdle(): void {
    if (this.inFlight.length > 0 || this.queue.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
