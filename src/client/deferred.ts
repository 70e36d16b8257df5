const noop = (): void => undefined;

/**
 * A promise with its resolve and reject exposed (Node 20 has no
 * Promise.withResolvers). `reject` marks the promise handled first, so a
 * rejection nobody awaits (a receipt the caller dropped) never crashes the
 * process as an unhandled rejection; callers that do await it still see it.
 * Doing that on the (rare) reject path keeps the hot path at one promise.
 */
export class Deferred<T> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  private rejectFn!: (reason: unknown) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.rejectFn = reject;
    });
  }

  reject(reason: unknown): void {
    this.promise.catch(noop);
    this.rejectFn(reason);
  }
}
