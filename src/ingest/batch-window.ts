import { CopyRowSet } from '../db/copy/loader';
import { ChangeSetBuilder, type ChangeSet } from '../store/change-set';
import { encodeFillRow, encodeOrderEventRow, encodeWireFillRow, encodeWireOrderEventRow, type EventTable, type WireFill, type WireOrderEvent } from '../store/events';
import type { FillInput, OrderEventInput } from './event';
import type { IngestStream } from './ingest-stream';
import { isStorableSeq } from './sequencer';

/** A rejected event waiting for its batch to commit. */
export interface PendingReject {
  seq: string;
  code: number;
  reason: string;
  raw: Buffer;
}

/** What one stream put into one window. */
export class Contribution {
  /** Rows encoded (order events and fills). */
  rows = 0;
  /** Rejected events, in arrival order. */
  readonly rejects: PendingReject[] = [];
  /** Lowest and highest storable seq of its rows and rejects ('' when none). */
  minSeq = '';
  maxSeq = '';
  /**
   * The stream's highest storable seq in earlier windows: the source's
   * high-water mark once those committed. A flush commits this contribution
   * only after the mark has reached it (see flush-order.ts).
   */
  readonly prevSeq: string;

  constructor(readonly stream: IngestStream) {
    this.prevSeq = stream.placedSeq;
  }

  /** Events counted against backpressure (rows plus rejects). */
  get events(): number {
    return this.rows + this.rejects.length;
  }

  /**
   * Records the seq of an event put in the window. The stream's sequencer
   * only lets through seqs above every earlier one, so each storable seq
   * noted is the highest so far: no comparisons needed.
   */
  noteSeq(seq: string): void {
    if (!isStorableSeq(seq)) return;
    this.noteStorableSeq(seq);
  }

  /** noteSeq for a seq known to be storable (a row's). */
  noteStorableSeq(seq: string): void {
    if (this.minSeq === '') this.minSeq = seq;
    this.maxSeq = seq;
    this.stream.placedSeq = seq;
  }
}

/** Bytes a reject is counted as beyond its raw bytes (reason, bookkeeping). */
const REJECT_OVERHEAD_BYTES = 128;

/**
 * One batch window: the encoded COPY rows of every stream, who each row
 * belongs to, the rejects, and what the read cache must forget. Rows are
 * encoded on arrival, so closing a window costs nothing and a flush only
 * ships bytes. A window is reset and reused after its flush.
 */
export class BatchWindow {
  readonly orders = new CopyRowSet();
  readonly fills = new CopyRowSet();
  /** Contribution of each row, by table, parallel to the row sets. */
  readonly orderRowOwners: Contribution[] = [];
  readonly fillRowOwners: Contribution[] = [];
  readonly contributions: Contribution[] = [];
  private readonly byStream = new Map<IngestStream, Contribution>();
  /** Fresh per window: the hooks may keep the ChangeSet after the window is reused. */
  private changes = new ChangeSetBuilder();
  rejectCount = 0;
  private rejectBytes = 0;
  /** When the first event arrived, ms (performance.now). */
  openedAtMs = 0;
  /** True once the window's time limit passed. */
  due = false;
  /** True once the window's timer is set. */
  timerArmed = false;
  /** Sequence number of the window (for logs and spans). */
  id = 0;

  /** Events in the window (rows and rejects). */
  get events(): number {
    return this.orders.rowCount + this.fills.rowCount + this.rejectCount;
  }

  /** Bytes held: encoded rows plus rejects. */
  get bytes(): number {
    return this.orders.byteLength + this.fills.byteLength + this.rejectBytes;
  }

  get isEmpty(): boolean {
    return this.events === 0;
  }

  /** The window's contribution of `stream`, created on first use (looked up once per message, not per event). */
  contributionOf(stream: IngestStream): Contribution {
    let c = this.byStream.get(stream);
    if (!c) {
      c = new Contribution(stream);
      this.byStream.set(stream, c);
      this.contributions.push(c);
    }
    return c;
  }

  addOrder(c: Contribution, seq: string, o: OrderEventInput): void {
    encodeOrderEventRow(this.orders, c.stream.sourceIdField, seq, o);
    this.orderRowOwners.push(c);
    c.rows++;
    c.noteStorableSeq(seq);
    this.changes.addOrderEvent(o.order_id, o.account_id);
  }

  addFill(c: Contribution, seq: string, f: FillInput): void {
    encodeFillRow(this.fills, c.stream.sourceIdField, seq, f);
    this.fillRowOwners.push(c);
    c.rows++;
    c.noteStorableSeq(seq);
    this.changes.addFill(f.order_id, f.account_id, f.symbol);
  }

  /** addOrder for a plain valid order event still in its bytes. */
  addWireOrder(c: Contribution, seq: string, w: WireOrderEvent): void {
    encodeWireOrderEventRow(this.orders, c.stream.sourceIdField, seq, w);
    this.orderRowOwners.push(c);
    c.rows++;
    c.noteStorableSeq(seq);
    this.changes.addWireOrderEvent(w);
  }

  /** addFill for a plain valid fill still in its bytes. */
  addWireFill(c: Contribution, seq: string, w: WireFill): void {
    encodeWireFillRow(this.fills, c.stream.sourceIdField, seq, w);
    this.fillRowOwners.push(c);
    c.rows++;
    c.noteStorableSeq(seq);
    this.changes.addWireFill(w);
  }

  addReject(c: Contribution, reject: PendingReject): void {
    c.rejects.push(reject);
    c.noteSeq(reject.seq);
    this.rejectCount++;
    this.rejectBytes += reject.raw.length + reject.reason.length + REJECT_OVERHEAD_BYTES;
  }

  /** Rows of `table` and their owners. */
  table(table: EventTable): { rows: CopyRowSet; owners: Contribution[] } {
    return table === 'order_events' ? { rows: this.orders, owners: this.orderRowOwners } : { rows: this.fills, owners: this.fillRowOwners };
  }

  /** The ChangeSet handed to the flush hooks. */
  changeSet(): ChangeSet {
    return this.changes.build();
  }

  /** Empties the window for reuse (buffers kept). */
  reset(): void {
    this.orders.reset();
    this.fills.reset();
    this.orderRowOwners.length = 0;
    this.fillRowOwners.length = 0;
    this.contributions.length = 0;
    this.byStream.clear();
    this.changes = new ChangeSetBuilder();
    this.rejectCount = 0;
    this.rejectBytes = 0;
    this.openedAtMs = 0;
    this.due = false;
    this.timerArmed = false;
  }
}
