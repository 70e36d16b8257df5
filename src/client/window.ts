import type { PendingEvent } from './pending-event';

/** One unacknowledged event held by a producer. */
export type WindowEntry = PendingEvent;

/**
 * The unacknowledged events of a producer, in strictly increasing seq order,
 * with a cursor marking how far the current stream has been written.
 * Removal is from the front only (acks cover prefixes), so it is an array
 * with a moving head, compacted now and then: O(1) push and shift, O(log n)
 * lookup by seq for Rejects.
 */
export class EventWindow {
  private items: WindowEntry[] = [];
  private head = 0;
  /** Absolute index of the first entry not yet written on the current stream. */
  private cursor = 0;

  /** Number of unacknowledged events. */
  get size(): number {
    return this.items.length - this.head;
  }

  /** Events not yet written on the current stream. */
  get unsentCount(): number {
    return this.items.length - this.cursor;
  }

  /** Oldest entry, if any. */
  first(): WindowEntry | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  /** Newest entry, if any. */
  last(): WindowEntry | undefined {
    return this.head < this.items.length ? this.items[this.items.length - 1] : undefined;
  }

  /** Appends an entry; its seq must be above the newest one. */
  push(entry: WindowEntry): void {
    const newest = this.last();
    if (newest && entry.seq <= newest.seq) throw new Error(`window order violated: ${entry.seq} after ${newest.seq}`);
    this.items.push(entry);
  }

  /** Removes every entry with seq <= `upTo`, oldest first, passing each to `fn`. Returns how many. */
  shiftUpTo(upTo: bigint, fn: (entry: WindowEntry) => void): number {
    let removed = 0;
    while (this.head < this.items.length && this.items[this.head]!.seq <= upTo) {
      const entry = this.items[this.head]!;
      (this.items as (WindowEntry | undefined)[])[this.head] = undefined;
      this.head++;
      removed++;
      fn(entry);
    }
    if (this.cursor < this.head) this.cursor = this.head;
    this.compact();
    return removed;
  }

  /** Removes every entry, oldest first, passing each to `fn`. */
  drain(fn: (entry: WindowEntry) => void): void {
    const all = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.cursor = 0;
    for (const entry of all) fn(entry);
  }

  /** The entry with this seq, by binary search. */
  find(seq: bigint): WindowEntry | undefined {
    let lo = this.head;
    let hi = this.items.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const entry = this.items[mid]!;
      if (entry.seq === seq) return entry;
      if (entry.seq < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** Takes up to `max` entries from the cursor (to be written now) and advances the cursor. */
  takeUnsent(max: number): WindowEntry[] {
    const end = Math.min(this.items.length, this.cursor + max);
    const taken = this.items.slice(this.cursor, end);
    this.cursor = end;
    return taken;
  }

  /** A new stream starts: every entry still held must be written again. */
  rewind(): void {
    this.cursor = this.head;
  }

  /** Every entry, oldest first (for spool compaction). */
  entries(): readonly WindowEntry[] {
    return this.items.slice(this.head);
  }

  // Dropping the consumed prefix once it is both large and most of the array
  // keeps push/shift amortised O(1) without copying on every ack.
  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.cursor = 0;
      this.head = 0;
    } else if (this.head > 1_024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.cursor -= this.head;
      this.head = 0;
    }
  }
}
