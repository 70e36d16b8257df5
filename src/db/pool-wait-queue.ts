/** A place in a WaitQueue; pass it to `remove` to leave the queue. */
export interface WaitNode<T> {
  readonly value: T;
  /** @internal */ prev: WaitNode<T> | undefined;
  /** @internal */ next: WaitNode<T> | undefined;
  /** @internal */ queued: boolean;
}

/**
 * FIFO of waiting acquires with O(1) removal from the middle, so an aborted
 * or timed-out acquire leaves the queue at once instead of lingering until it
 * reaches the front (pg.Pool cannot do that). A doubly linked list: an array
 * would make every removal O(n).
 */
export class WaitQueue<T> {
  private head: WaitNode<T> | undefined;
  private tail: WaitNode<T> | undefined;
  private size = 0;

  /** Number of waiters. */
  get length(): number {
    return this.size;
  }

  /** Appends a waiter; keep the node to remove it later. */
  push(value: T): WaitNode<T> {
    const node: WaitNode<T> = { value, prev: this.tail, next: undefined, queued: true };
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.size++;
    return node;
  }

  /** Removes and returns the oldest waiter. */
  shift(): T | undefined {
    const node = this.head;
    if (!node) return undefined;
    this.remove(node);
    return node.value;
  }

  /** Removes `node`; false when it already left the queue. */
  remove(node: WaitNode<T>): boolean {
    if (!node.queued) return false;
    node.queued = false;
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = node.next = undefined;
    this.size--;
    return true;
  }
}
