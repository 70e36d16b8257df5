/**
 * Ordering between flushes in flight. Up to INGEST_FLUSH_PIPELINE_DEPTH
 * windows are written at once, each on its own connection, but a source's
 * rows must commit in window order: a later window raising the high-water
 * mark first would make the earlier window's events look like duplicates on
 * its retry. The source rows' FOR UPDATE lock serializes the commits; a
 * ticket lets a flush wait until the flush before it holds that lock (so it
 * queues behind it in PostgreSQL instead of overtaking it), and the flush
 * checks after locking that every earlier window of its streams committed.
 */
export class FlushTicket {
  /** Resolves once the flush holds its source locks (or has finished). */
  readonly locked: Promise<void>;
  /** Resolves once the flush has finished, committed or abandoned. */
  readonly done: Promise<void>;
  private lockedValue = false;
  private doneValue = false;
  private resolveLocked!: () => void;
  private resolveDone!: () => void;

  constructor() {
    this.locked = new Promise((resolve) => (this.resolveLocked = resolve));
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get isLocked(): boolean {
    return this.lockedValue;
  }

  get isDone(): boolean {
    return this.doneValue;
  }

  markLocked(): void {
    if (this.lockedValue) return;
    this.lockedValue = true;
    this.resolveLocked();
  }

  markDone(): void {
    this.markLocked();
    if (this.doneValue) return;
    this.doneValue = true;
    this.resolveDone();
  }
}

/** A flush's place in the pipeline. */
export interface FlushOrder {
  /** The flush started just before this one, when it is still running. */
  predecessor?: FlushTicket;
  /** This flush's ticket, marked by the writer when it holds its source locks. */
  ticket: FlushTicket;
}

/** An earlier window of one of this flush's streams has not committed yet: roll back, wait for it, write again. */
export class PredecessorPendingError extends Error {
  constructor(readonly sourceId: string) {
    super(`An earlier batch window of source ${sourceId} has not committed yet.`);
    this.name = 'PredecessorPendingError';
  }
}
