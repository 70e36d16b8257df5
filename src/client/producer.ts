import { status, type StatusObject } from '@grpc/grpc-js';
import type { IngestResponse__Output } from '../generated/orderflow/v1/IngestResponse';
import { backoffDelayMs } from './backoff';
import { Deferred } from './deferred';
import { ClientAbortedError, EventRejectedError, FencedError, InvalidSequenceError, OrderFlowClientError, ProducerClosedError, ProtocolError, statusName } from './errors';
import { encodeBatch, encodeEvent, encodeHello } from './event-codec';
import { parseSeq, toWireEvent, type EventStatus, type IngestEventInput, type SendReceipt } from './events';
import type { ResolvedProducerOptions } from './options';
import { Spool } from './spool';
import { PendingEvent } from './pending-event';
import type { ConnectionState, IngestCall, IngestTransport, ProducerState, ProducerStats } from './producer-types';
import { classifyStreamEnd } from './stream-end';
import { EventWindow, type WindowEntry } from './window';

interface Waiter {
  entry: WindowEntry;
  /** Resolves once the entry is in the window (and spooled). */
  room: Deferred<void>;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** How long close() waits for the server to end the stream after our half-close, ms. */
const STREAM_END_GRACE_MS = 1_000;

/**
 * An exactly-once ingest producer for one source. `send` puts events in a
 * bounded window and onto the stream in batches; Acks settle them; on a
 * dropped stream it reconnects with backoff, reads `Welcome.last_committed_seq`,
 * settles what that covers and resends exactly the rest. Created by
 * `OrderFlowClient.openIngest`.
 */
export class IngestProducer {
  readonly sourceId: string;
  private stateValue: ProducerState = 'OPENING';
  private connection: ConnectionState = 'DOWN';
  private readonly window = new EventWindow();
  private waiters: Waiter[] = [];
  private flushes: { target: bigint; deferred: Deferred<void> }[] = [];
  /** The source's committed mark as last reported. */
  private committedSeq = 0n;
  /** Highest seq accepted by send (or recovered from the spool). */
  private lastSeq = 0n;
  /** Highest seq this producer knows the source to have reached through itself: the first Welcome and every seq it wrote. */
  private knownSeq = 0n;
  private welcomedOnce = false;
  private readonly opened = new Deferred<void>();
  private call: IngestCall | undefined;
  private callId = 0;
  private writeBlocked = false;
  private batchTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private failure: OrderFlowClientError | undefined;
  private closing: Promise<void> | undefined;
  private streamEnded: Deferred<void> | undefined;
  private spool: Spool | undefined;
  private spoolClosed: Promise<void> | undefined;
  private lastStreamError: string | undefined;
  private readonly counters = {
    eventsAccepted: 0,
    eventsSent: 0,
    eventsResent: 0,
    eventsStored: 0,
    eventsCommitted: 0,
    eventsDuplicate: 0,
    eventsRejected: 0,
    eventsFailed: 0,
    batchesSent: 0,
    reconnects: 0,
    reconnectAttempts: 0,
    sendWaits: 0,
    serverStored: 0,
    serverRejected: 0,
    serverDuplicates: 0,
  };

  private constructor(
    private readonly transport: IngestTransport,
    private readonly options: ResolvedProducerOptions,
  ) {
    this.sourceId = options.sourceId;
    if (options.spool) {
      const { spool, recovered } = Spool.open(options.spool, options.sourceId);
      this.spool = spool;
      const truncated = spool.stats().truncatedBytes;
      if (truncated > 0) this.warn('spool-truncated', `cut ${truncated} bytes of torn or corrupt tail off the spool`);
      this.committedSeq = recovered.committedSeq;
      this.lastSeq = recovered.committedSeq;
      for (const event of recovered.events) {
        // The previous process may have sent these: `written` makes a covering
        // Welcome settle them as committed, not as duplicates.
        const entry = new PendingEvent(event.seq, event.bytes, true);
        this.window.push(entry);
        this.lastSeq = entry.seq;
      }
    }
  }

  /** Opens a producer and waits for the first Welcome. Used by OrderFlowClient.openIngest. */
  static async open(transport: IngestTransport, options: ResolvedProducerOptions): Promise<IngestProducer> {
    const producer = new IngestProducer(transport, options);
    const { signal } = options;
    const onAbort = () => void producer.destroy(new ClientAbortedError({ cause: signal?.reason }));
    if (signal?.aborted) onAbort();
    else {
      signal?.addEventListener('abort', onAbort, { once: true });
      producer.connect();
    }
    try {
      await producer.opened.promise;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return producer;
  }

  /** Life cycle state. */
  get state(): ProducerState {
    return this.stateValue;
  }

  /**
   * Takes one event. Waits while the window is full (backpressure), then
   * resolves with the event's seq and its `acked` promise, once the event is
   * in the window (and written to the spool, when there is one). Rejects with
   * InvalidEventError / InvalidSequenceError for a bad event, or with the
   * producer's terminal error (FencedError, ProducerClosedError, …).
   * A caller-supplied seq at or below the committed mark settles at once as
   * `duplicate` without being sent.
   */
  send(event: IngestEventInput, options?: { signal?: AbortSignal }): Promise<SendReceipt> {
    // Not an async function: the common case (room in the window, no spool)
    // then costs one already-resolved promise instead of async machinery.
    let entry: WindowEntry;
    try {
      this.assertAccepting();
      let seq: bigint;
      if (event.seq !== undefined && event.seq !== null) {
        seq = parseSeq(event.seq);
        if (seq <= this.committedSeq) {
          toWireEvent(event, seq); // still refuse a malformed event
          this.counters.eventsAccepted++;
          this.counters.eventsDuplicate++;
          return Promise.resolve({ seq, acked: Promise.resolve({ seq, status: 'duplicate' as const }) });
        }
        if (seq <= this.lastSeq) throw new InvalidSequenceError(seq, this.lastSeq);
      } else {
        seq = this.lastSeq + 1n;
      }
      entry = new PendingEvent(seq, encodeEvent(toWireEvent(event, seq)), false);
      this.lastSeq = seq;
      this.counters.eventsAccepted++;
    } catch (err) {
      return Promise.reject(err);
    }
    const receipt: SendReceipt = entry;
    if (this.waiters.length === 0 && this.window.size < this.options.maxWindowEvents) {
      const spooled = this.enter(entry);
      this.scheduleWrite();
      return spooled ? spooled.then(() => receipt) : Promise.resolve(receipt);
    }
    this.counters.sendWaits++;
    return this.waitForRoom(entry, options?.signal).then(() => receipt);
  }

  /** Resolves when every event accepted so far has settled. Rejects with the terminal error if the producer fails first. */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const target = this.lastSeq;
    if (!this.hasPendingUpTo(target)) return Promise.resolve();
    const deferred = new Deferred<void>();
    this.flushes.push({ target, deferred });
    return deferred.promise;
  }

  /**
   * Stops taking events, waits up to `closeTimeoutMs` for every pending one
   * to settle, then ends the stream and closes the spool. Rejects with what
   * prevented a full flush (FencedError, a fatal stream error, or
   * ProducerClosedError at the timeout); the producer is closed either way.
   * Idempotent.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  /**
   * Closes now: cancels the stream and rejects every pending event with
   * `reason` (default ProducerClosedError). A spool keeps them for the next
   * process. Idempotent.
   */
  async destroy(reason?: OrderFlowClientError): Promise<void> {
    if (!this.isTerminal()) this.fail(reason ?? new ProducerClosedError(this.sourceId), 'CLOSED');
    await this.spoolClosed;
  }

  /** A snapshot of the producer's figures. */
  stats(): ProducerStats {
    const c = this.counters;
    return {
      sourceId: this.sourceId,
      state: this.stateValue,
      connection: this.connection,
      ...c,
      eventsAcked: c.eventsStored + c.eventsCommitted,
      windowEvents: this.window.size,
      windowMax: this.options.maxWindowEvents,
      waitingSends: this.waiters.length,
      lastSeq: this.lastSeq,
      lastCommittedSeq: this.committedSeq,
      lastStreamError: this.lastStreamError,
      spool: this.spool?.stats(),
    };
  }

  /** Highest seq accepted so far (a restarted producer on a spool continues above it). */
  get lastAcceptedSeq(): bigint {
    return this.lastSeq;
  }

  /** The source's committed mark as last reported by the server. */
  get lastCommittedSeq(): bigint {
    return this.committedSeq;
  }

  // --- window admission ---------------------------------------------------

  private enter(entry: WindowEntry): Promise<void> | undefined {
    this.window.push(entry);
    const spooled = this.spool?.append(entry.seq, entry.bytes);
    if (!spooled) return undefined;
    // A spool that cannot write makes the producer unusable: durability was promised.
    spooled.catch((err: unknown) => this.fail(err instanceof OrderFlowClientError ? err : new OrderFlowClientError(status.INTERNAL, String(err)), 'FAILED'));
    return spooled;
  }

  private waitForRoom(entry: WindowEntry, signal: AbortSignal | undefined): Promise<void> {
    const waiter: Waiter = { entry, room: new Deferred(), signal, onAbort: undefined };
    if (signal) {
      if (signal.aborted) {
        this.counters.eventsFailed++;
        return Promise.reject(new ClientAbortedError({ cause: signal.reason }));
      }
      waiter.onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index < 0) return;
        // The seq stays consumed: gaps are allowed, reuse is not.
        this.waiters.splice(index, 1);
        this.counters.eventsFailed++;
        waiter.room.reject(new ClientAbortedError({ cause: signal.reason }));
        this.resolveFlushes();
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
    }
    this.waiters.push(waiter);
    return waiter.room.promise;
  }

  // Entries enter the window here, synchronously and in FIFO order, so a
  // send() made meanwhile can never overtake a waiting one.
  private admitWaiters(): void {
    let admitted = false;
    while (this.waiters.length > 0 && this.window.size < this.options.maxWindowEvents && !this.isTerminal()) {
      const waiter = this.waiters.shift()!;
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      const spooled = this.enter(waiter.entry);
      if (spooled) spooled.then(() => waiter.room.resolve(), (err: unknown) => waiter.room.reject(err));
      else waiter.room.resolve();
      admitted = true;
    }
    if (admitted) this.scheduleWrite();
  }

  // --- writing --------------------------------------------------------------

  private isWritable(): boolean {
    return this.connection === 'READY' && !this.writeBlocked && this.call !== undefined;
  }

  // Full batches go out at once; a partial one waits `lingerMs` (0: the end
  // of this tick) for company.
  private scheduleWrite(): void {
    if (!this.isWritable()) return;
    if (this.window.unsentCount >= this.options.maxBatchEvents) this.writeBatches(false);
    if (this.window.unsentCount > 0 && this.batchTimer === undefined && this.isWritable()) {
      const fire = () => {
        this.batchTimer = undefined;
        this.writeBatches(true);
      };
      this.batchTimer = this.options.lingerMs > 0 ? setTimeout(fire, this.options.lingerMs) : setImmediate(fire);
    }
  }

  private writeBatches(includePartial: boolean): void {
    const call = this.call;
    while (call && this.isWritable() && this.window.unsentCount > 0) {
      if (!includePartial && this.window.unsentCount < this.options.maxBatchEvents) return;
      const entries = this.window.takeUnsent(this.options.maxBatchEvents);
      const events: Buffer[] = new Array(entries.length);
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]!;
        if (entry.written) this.counters.eventsResent++;
        else this.counters.eventsSent++;
        entry.written = true;
        events[i] = entry.bytes;
      }
      const newest = entries[entries.length - 1]!.seq;
      if (newest > this.knownSeq) this.knownSeq = newest;
      this.counters.batchesSent++;
      // write() returning false is HTTP/2 flow control (the server stopped
      // reading): stop here and let the window fill, which stalls send().
      if (!call.write(encodeBatch(events))) {
        this.writeBlocked = true;
        call.once('drain', () => {
          if (call !== this.call) return;
          this.writeBlocked = false;
          this.writeBatches(true);
        });
      }
    }
  }

  // --- the stream -----------------------------------------------------------

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.isTerminal()) return;
    const id = ++this.callId;
    if (id > 1) this.counters.reconnectAttempts++;
    this.connection = 'CONNECTING';
    this.writeBlocked = false;
    this.window.rewind();
    let call: IngestCall;
    try {
      call = this.transport.openStream(this.options.metadata);
    } catch (err) {
      this.fail(err instanceof OrderFlowClientError ? err : new OrderFlowClientError(status.INTERNAL, String(err), { cause: err }), 'FAILED');
      return;
    }
    this.call = call;
    call.on('data', (message: IngestResponse__Output) => this.onMessage(message, id));
    // Failures arrive as 'status' too; an 'error' without a listener would throw.
    call.on('error', () => undefined);
    call.on('status', (s: StatusObject) => {
      // Messages already received may still sit in the stream's buffer and be
      // emitted on the next tick: handle the end after them.
      setImmediate(() => this.onCallEnded(s, id));
    });
    call.write(encodeHello(this.sourceId));
  }

  private onMessage(message: IngestResponse__Output, id: number): void {
    if (this.isTerminal()) return;
    try {
      if (message.ack) this.onAck(message.ack.committed_seq, message.ack);
      else if (message.reject) this.onReject(BigInt(message.reject.seq), message.reject.code, message.reject.reason);
      else if (message.welcome && id === this.callId) this.onWelcome(message.welcome.source_id, BigInt(message.welcome.last_committed_seq));
    } catch (err) {
      this.fail(err instanceof OrderFlowClientError ? err : new ProtocolError(`cannot handle a server message: ${String(err)}`), 'FAILED');
    }
  }

  private onWelcome(sourceId: string, mark: bigint): void {
    if (sourceId !== '' && sourceId !== this.sourceId) throw new ProtocolError(`Welcome for source ${JSON.stringify(sourceId)} on a stream opened for ${JSON.stringify(this.sourceId)}`);
    if (!this.welcomedOnce) {
      this.knownSeq = mark;
    } else if (mark > this.knownSeq) {
      // Nothing this producer sent reaches that high: another writer used the
      // source while we were away. Resuming would settle our events against
      // theirs, so stop instead.
      this.fail(new FencedError(this.sourceId, 'superseded', `Welcome.last_committed_seq ${mark} is above the highest seq this producer sent (${this.knownSeq})`), 'FENCED');
      return;
    }
    if (mark < this.committedSeq) {
      this.warn('ack-regression', `the server's committed mark went back from ${this.committedSeq} to ${mark}; events acked in between may be lost on the server`);
    }
    this.committedSeq = mark;
    this.window.shiftUpTo(mark, (entry) => this.settle(entry, entry.written ? 'committed' : 'duplicate'));
    if (mark > this.lastSeq) this.lastSeq = mark;
    this.spool?.markCommitted(mark);
    this.connection = 'READY';
    if (this.window.size === 0) this.attempt = 0;
    if (!this.welcomedOnce) {
      this.welcomedOnce = true;
      this.stateValue = 'OPEN';
      this.opened.resolve();
    } else {
      this.counters.reconnects++;
    }
    this.admitWaiters();
    this.resolveFlushes();
    // Resend everything above the mark at once, no linger.
    this.writeBatches(true);
  }

  private onAck(committedSeq: string, counts: { stored: number; rejected: number; duplicates: number }): void {
    this.counters.serverStored += counts.stored;
    this.counters.serverRejected += counts.rejected;
    this.counters.serverDuplicates += counts.duplicates;
    const mark = BigInt(committedSeq);
    if (mark <= this.committedSeq) return;
    this.committedSeq = mark;
    // Our streams never send a seq at or below the mark, so the server should
    // count no duplicates; if it does, we cannot tell which events they were.
    const ambiguous = counts.duplicates > 0;
    if (ambiguous) this.warn('ambiguous-ack', `an Ack up to ${mark} counted ${counts.duplicates} duplicates; its events settle as committed`);
    this.window.shiftUpTo(mark, (entry) => this.settle(entry, !entry.written ? 'duplicate' : ambiguous ? 'committed' : 'stored'));
    this.spool?.markCommitted(mark);
    this.attempt = 0;
    this.admitWaiters();
    this.resolveFlushes();
  }

  private onReject(seq: bigint, code: number, reason: string): void {
    const entry = this.window.find(seq);
    if (!entry) {
      this.warn('unknown-reject', `Reject for seq ${seq}, which this producer does not hold (${reason})`);
      return;
    }
    entry.rejection = { code, reason };
  }

  private onCallEnded(s: StatusObject, id: number): void {
    if (id !== this.callId) return;
    this.call = undefined;
    this.connection = 'DOWN';
    this.streamEnded?.resolve();
    if (this.isTerminal() || this.streamEnded) return;
    this.lastStreamError = `${statusName(s.code)}: ${s.details}`;
    const verdict = classifyStreamEnd(s);
    if (verdict === 'fenced') {
      this.fail(new FencedError(this.sourceId, 'newer-stream', s.details || 'the server ended the stream with ABORTED', { metadata: s.metadata }), 'FENCED');
      return;
    }
    if (verdict === 'fatal' || this.attempt >= this.options.maxReconnectAttempts) {
      const error = new OrderFlowClientError(s.code, s.details, {
        metadata: s.metadata,
        message: `The Ingest stream of source ${JSON.stringify(this.sourceId)} ended with ${statusName(s.code)}: ${s.details}`,
      });
      this.fail(error, 'FAILED');
      return;
    }
    const delayMs = backoffDelayMs(this.attempt++, this.options.backoff);
    this.connection = 'BACKOFF';
    this.reconnectTimer = setTimeout(() => this.connect(), delayMs);
    // Keep the process alive while someone waits (openIngest) or something is
    // undelivered; an idle producer must not hold the process open.
    if (this.welcomedOnce && this.window.size === 0 && this.waiters.length === 0) this.reconnectTimer.unref();
  }

  // --- settling -------------------------------------------------------------

  private settle(entry: WindowEntry, outcome: EventStatus): void {
    if (entry.rejection && outcome !== 'duplicate') {
      this.counters.eventsRejected++;
      const error = new EventRejectedError(this.sourceId, entry.seq, entry.rejection.code, entry.rejection.reason);
      entry.reject(error);
      this.options.onEventRejected?.(error);
      return;
    }
    if (outcome === 'stored') this.counters.eventsStored++;
    else if (outcome === 'committed') this.counters.eventsCommitted++;
    else this.counters.eventsDuplicate++;
    entry.resolve({ seq: entry.seq, status: outcome });
  }

  private hasPendingUpTo(target: bigint): boolean {
    const first = this.window.first();
    if (first && first.seq <= target) return true;
    const waiter = this.waiters[0];
    return waiter !== undefined && waiter.entry.seq <= target;
  }

  private resolveFlushes(): void {
    if (this.flushes.length === 0) return;
    this.flushes = this.flushes.filter((f) => {
      if (this.hasPendingUpTo(f.target)) return true;
      f.deferred.resolve();
      return false;
    });
  }

  // --- ending ---------------------------------------------------------------

  private isTerminal(): boolean {
    return this.stateValue === 'CLOSED' || this.stateValue === 'FENCED' || this.stateValue === 'FAILED';
  }

  private assertAccepting(): void {
    if (this.failure) throw this.failure;
    if (this.stateValue !== 'OPEN') throw new ProducerClosedError(this.sourceId);
  }

  /** Ends the producer: every pending event and waiter rejects with `error`. */
  private fail(error: OrderFlowClientError, state: 'CLOSED' | 'FENCED' | 'FAILED'): void {
    if (this.isTerminal()) return;
    this.failure = error;
    this.stateValue = state;
    this.connection = 'DOWN';
    if (this.batchTimer !== undefined) {
      clearTimeout(this.batchTimer as NodeJS.Timeout);
      clearImmediate(this.batchTimer as NodeJS.Immediate);
      this.batchTimer = undefined;
    }
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const call = this.call;
    this.call = undefined;
    this.callId++;
    call?.cancel();
    this.window.drain((entry) => {
      this.counters.eventsFailed++;
      entry.reject(error);
    });
    for (const waiter of this.waiters.splice(0)) {
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      this.counters.eventsFailed++;
      waiter.entry.reject(error);
      waiter.room.reject(error);
    }
    for (const f of this.flushes.splice(0)) f.deferred.reject(error);
    this.opened.reject(error);
    // The spool keeps whatever was not acked, for the next process.
    this.spoolClosed = this.spool?.close().catch(() => undefined) ?? Promise.resolve();
    this.transport.release(this);
  }

  private async shutdown(): Promise<void> {
    if (this.isTerminal()) {
      await this.spoolClosed;
      return;
    }
    this.stateValue = 'DRAINING';
    let problem: OrderFlowClientError | undefined;
    const target = this.lastSeq;
    if (this.hasPendingUpTo(target)) {
      const deferred = new Deferred<void>();
      this.flushes.push({ target, deferred });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ProducerClosedError(this.sourceId)), this.options.closeTimeoutMs);
      });
      try {
        await Promise.race([deferred.promise, timeout]);
      } catch (err) {
        problem = err as OrderFlowClientError;
      } finally {
        clearTimeout(timer);
      }
    }
    if (this.isTerminal()) {
      await this.spoolClosed;
      throw this.failure ?? problem;
    }
    if (problem) {
      this.fail(problem, 'CLOSED');
      await this.spoolClosed;
      throw problem;
    }
    // Half-close and give the server a moment to end the stream cleanly.
    const call = this.call;
    if (call) {
      this.streamEnded = new Deferred<void>();
      call.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.streamEnded.promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, STREAM_END_GRACE_MS)))]);
      clearTimeout(timer);
    }
    this.fail(new ProducerClosedError(this.sourceId), 'CLOSED');
    await this.spoolClosed;
  }

  private warn(kind: 'ack-regression' | 'unknown-reject' | 'ambiguous-ack' | 'spool-truncated', message: string): void {
    this.options.onWarning?.({ kind, message });
  }
}
