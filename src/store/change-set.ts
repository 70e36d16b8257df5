import type { Transaction } from '../db/types';
import type { TagHash } from '../db/tag-hash';
import { accountTagHash, accountTagHashAscii, ANY_CHANGE_TAG_HASH, orderTagHash, orderTagHashAscii, positionTagHash, positionTagHashAscii } from './cache-tags';
import type { WireFill, WireOrderEvent } from './events';
import type { Notification } from './sources';

/** NOTIFY payloads must be shorter than 8000 bytes (https://www.postgresql.org/docs/current/sql-notify.html). */
export const MAX_NOTIFY_PAYLOAD_BYTES = 7_999;

/** The ids a commit changed, as other instances hear of them. */
export interface ChangedIds {
  /** Orders with a new order event or fill. */
  orderIds: ReadonlySet<string>;
  /** Accounts with a new order event or fill. */
  accountIds: ReadonlySet<string>;
  /** Symbols of the new fills, by account (positions). */
  symbolsByAccount: ReadonlyMap<string, ReadonlySet<string>>;
}

/** What one committed write touched; the read path invalidates its cache from it. */
export interface ChangeSet {
  /**
   * The hash of every cache tag the write changes (store/cache-tags.ts),
   * repeats allowed; empty when it changed nothing. This instance
   * invalidates exactly these.
   */
  tagHashes: readonly TagHash[];
  /**
   * The changed ids for other instances, or undefined when they cannot fit
   * in one NOTIFY: other instances then drop everything.
   */
  ids: ChangedIds | undefined;
}

/**
 * Collects a ChangeSet one event at a time. Every event costs three string
 * hashes and no retained object; the ids themselves are kept only while
 * their JSON could still fit in one NOTIFY (a lower bound of its size is
 * counted as they come), so a large window holds none of them.
 */
export class ChangeSetBuilder {
  private readonly tagHashes: TagHash[] = [];
  private orderIds = new Set<string>();
  private accountIds = new Set<string>();
  private symbolsByAccount = new Map<string, Set<string>>();
  /** Lower bound of the ids' JSON: each id plus its quotes and comma. */
  private idBytes = 0;
  private overflowed = false;
  private built: ChangeSet | undefined;

  addOrderEvent(orderId: string, accountId: string): void {
    this.built = undefined;
    this.tagHashes.push(orderTagHash(orderId), accountTagHash(accountId));
    if (!this.overflowed) this.noteOrderIds(orderId, accountId);
  }

  /** addOrderEvent for an order event still in its bytes (its ids are printable ASCII): strings only while the ids are kept. */
  addWireOrderEvent(w: WireOrderEvent): void {
    this.built = undefined;
    const b = w.buf;
    this.tagHashes.push(orderTagHashAscii(b, w.orderIdStart, w.orderIdEnd), accountTagHashAscii(b, w.accountIdStart, w.accountIdEnd));
    if (!this.overflowed) this.noteOrderIds(b.toString('latin1', w.orderIdStart, w.orderIdEnd), b.toString('latin1', w.accountIdStart, w.accountIdEnd));
  }

  private noteOrderIds(orderId: string, accountId: string): void {
    this.note(this.orderIds, orderId);
    this.note(this.accountIds, accountId);
    this.checkSize();
  }

  addFill(orderId: string, accountId: string, symbol: string): void {
    this.built = undefined;
    this.tagHashes.push(orderTagHash(orderId), accountTagHash(accountId), positionTagHash(accountId, symbol));
    if (!this.overflowed) this.noteFillIds(orderId, accountId, symbol);
  }

  /** addFill for a fill still in its bytes (its ids are printable ASCII): strings only while the ids are kept. */
  addWireFill(w: WireFill): void {
    this.built = undefined;
    const b = w.buf;
    this.tagHashes.push(
      orderTagHashAscii(b, w.orderIdStart, w.orderIdEnd),
      accountTagHashAscii(b, w.accountIdStart, w.accountIdEnd),
      positionTagHashAscii(b, w.accountIdStart, w.accountIdEnd, w.symbolStart, w.symbolEnd),
    );
    if (!this.overflowed) this.noteFillIds(b.toString('latin1', w.orderIdStart, w.orderIdEnd), b.toString('latin1', w.accountIdStart, w.accountIdEnd), b.toString('latin1', w.symbolStart, w.symbolEnd));
  }

  private noteFillIds(orderId: string, accountId: string, symbol: string): void {
    this.note(this.orderIds, orderId);
    this.note(this.accountIds, accountId);
    let symbols = this.symbolsByAccount.get(accountId);
    if (!symbols) this.symbolsByAccount.set(accountId, (symbols = new Set()));
    if (!symbols.has(symbol)) {
      symbols.add(symbol);
      // ["account","symbol"], : the account is counted again inside the pair.
      this.idBytes += accountId.length + symbol.length + 8;
    }
    this.checkSize();
  }

  /** The ChangeSet so far (the same object until another event is added). */
  build(): ChangeSet {
    if (!this.built) {
      const tagHashes = this.tagHashes.length > 0 ? [...this.tagHashes, ANY_CHANGE_TAG_HASH] : [];
      const ids = this.overflowed ? undefined : { orderIds: this.orderIds, accountIds: this.accountIds, symbolsByAccount: this.symbolsByAccount };
      this.built = { tagHashes, ids };
    }
    return this.built;
  }

  private note(ids: Set<string>, id: string): void {
    if (ids.has(id)) return;
    ids.add(id);
    this.idBytes += id.length + 3;
  }

  private checkSize(): void {
    if (this.idBytes <= MAX_NOTIFY_PAYLOAD_BYTES) return;
    this.overflowed = true;
    this.orderIds = new Set();
    this.accountIds = new Set();
    this.symbolsByAccount = new Map();
  }
}

/**
 * Hooks the ingest flush calls around its commit. The read path uses them:
 * NOTIFY other instances inside the transaction, invalidate the local cache
 * after COMMIT and before any ack is sent (read-your-writes).
 */
export interface FlushHooks {
  /**
   * The NOTIFY that must commit with these changes, or undefined for none.
   * A writer that can send it in its own commit statement (the ingest flush
   * does, saving a round trip) calls this instead of beforeCommit.
   */
  notification?(changes: ChangeSet): Notification | undefined;
  /** Runs inside the transaction, before COMMIT. A throw fails (and retries) the flush. */
  beforeCommit?(tx: Transaction, changes: ChangeSet): Promise<void>;
  /** Runs after COMMIT, before acks go out. Must not throw. */
  afterCommit?(changes: ChangeSet): void;
}
