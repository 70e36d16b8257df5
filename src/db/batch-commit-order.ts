import { CancelledError, OrderflowError } from '../errors';

/** A chunk was rolled back because a chunk before it failed (ordered commit). */
export class EarlierChunkFailedError extends OrderflowError {
  constructor(readonly failedIndex: number) {
    super('CANCELLED', 'Not committed: an earlier chunk failed.');
  }
}

/**
 * Makes concurrent chunks commit in input order. A chunk does its work in its
 * transaction, then awaits `turn(index)` before its final statements and
 * COMMIT, then calls `committed(index)` (or `failed(index)`).
 *
 * Why: a batch that keeps a high-water mark (the import's source seq) must
 * never commit chunk k+1 before chunk k, or a crash in between would leave a
 * mark above rows that were never stored, and a rerun would skip them. With
 * the gate the chunks still load in parallel; only their commits queue up.
 */
export class CommitOrder {
  private next = 0;
  private failedIndex: number | undefined;
  private readonly waiters = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

  /** Resolves once every chunk before `index` has committed; rejects if one failed or `signal` aborts. */
  turn(index: number, signal?: AbortSignal): Promise<void> {
    if (this.failedIndex !== undefined && this.failedIndex < index) return Promise.reject(new EarlierChunkFailedError(this.failedIndex));
    if (this.next === index) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new CancelledError());
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(index);
        reject(new CancelledError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.set(index, {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      });
    });
  }

  /** Chunk `index` committed: the next one may commit. */
  committed(index: number): void {
    this.next = index + 1;
    const waiter = this.waiters.get(this.next);
    this.waiters.delete(this.next);
    waiter?.resolve();
  }

  /** Chunk `index` failed: every later chunk waiting or yet to wait is refused. */
  failed(index: number): void {
    if (this.failedIndex === undefined || index < this.failedIndex) this.failedIndex = index;
    for (const [waiting, waiter] of [...this.waiters]) {
      if (waiting > index) {
        this.waiters.delete(waiting);
        waiter.reject(new EarlierChunkFailedError(index));
      }
    }
  }
}
