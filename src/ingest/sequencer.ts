/**
 * Per-stream sequencing. Sequence numbers stay canonical decimal strings
 * (what the wire decoder and PostgreSQL's bigint text output produce: no
 * sign, no leading zeros), so they compare exactly without BigInt and
 * without an allocation per event: a longer string is a larger number, equal
 * lengths compare lexicographically.
 */

/** Largest seq that fits the `bigint` columns: 2⁶³ − 1. */
export const MAX_SEQ = '9223372036854775807';

/** Compares two canonical unsigned decimal strings: negative, zero or positive. */
export function compareSeq(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The larger of two canonical decimal strings. */
export function maxSeq(a: string, b: string): string {
  return compareSeq(a, b) >= 0 ? a : b;
}

/** True when `seq` can be stored: 1 ≤ seq ≤ 2⁶³ − 1. */
export function isStorableSeq(seq: string): boolean {
  if (seq === '0' || seq.length === 0) return false;
  return seq.length < MAX_SEQ.length || (seq.length === MAX_SEQ.length && seq <= MAX_SEQ);
}

/** What the sequencer decided for one event. */
export type SeqVerdict = 'NEXT' | 'DUPLICATE' | 'INVALID';

/**
 * The high-water mark of one stream: the highest seq seen, committed or in
 * flight. An event at or below it is a duplicate (dropped, counted, never
 * stored); seq 0 or above 2⁶³ − 1 is invalid (rejected, quarantined) and
 * does not move the mark.
 */
export class StreamSequencer {
  constructor(
    /** Highest seq accepted so far; starts at the source's committed seq from the database. */
    public highestSeen: string,
  ) {}

  /** Classifies `seq` and, for NEXT, advances the mark to it. */
  accept(seq: string): SeqVerdict {
    if (!isStorableSeq(seq)) return 'INVALID';
    if (compareSeq(seq, this.highestSeen) <= 0) return 'DUPLICATE';
    this.highestSeen = seq;
    return 'NEXT';
  }
}
