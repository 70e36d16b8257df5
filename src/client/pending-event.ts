import { Deferred } from './deferred';
import type { EventOutcome, SendReceipt } from './events';

const NO_BYTES = Buffer.alloc(0);

/**
 * One event between `send` and its ack: the window's entry and, typed as
 * SendReceipt, the caller's receipt. Its `acked` promise is created only when
 * read, so callers that track progress through `flush()` or `stats()` pay no
 * promise per event (at 100k events/s that allocation is a third of the
 * client's CPU, most of it in GC).
 */
export class PendingEvent implements SendReceipt {
  /**
   * Written on some stream by this producer, or recovered from a spool (the
   * previous process may have sent it). Decides `committed` vs `duplicate`
   * when a Welcome covers the event.
   */
  written: boolean;
  /** Set when a Reject for this seq arrived; the event settles as rejected once committed. */
  rejection: { code: number; reason: string } | undefined;
  private deferred: Deferred<EventOutcome> | undefined;
  private result: { outcome: EventOutcome } | { error: unknown } | undefined;

  constructor(
    readonly seq: bigint,
    /** The event's protobuf `Event` bytes, encoded once by send (see event-codec.ts); dropped once settled. */
    public bytes: Buffer,
    written: boolean,
  ) {
    this.written = written;
  }

  /** Settles when the server's Ack (or a resume Welcome) covers the event. See SendReceipt. */
  get acked(): Promise<EventOutcome> {
    if (!this.deferred) {
      this.deferred = new Deferred<EventOutcome>();
      const result = this.result;
      if (result && 'outcome' in result) this.deferred.resolve(result.outcome);
      else if (result) this.deferred.reject(result.error);
    }
    return this.deferred.promise;
  }

  /** True once resolved or rejected. */
  get settled(): boolean {
    return this.result !== undefined;
  }

  resolve(outcome: EventOutcome): void {
    if (this.result) return;
    this.result = { outcome };
    this.bytes = NO_BYTES;
    this.deferred?.resolve(outcome);
  }

  reject(error: unknown): void {
    if (this.result) return;
    this.result = { error };
    this.bytes = NO_BYTES;
    this.deferred?.reject(error);
  }
}
