import type { Transaction } from '../db/types';
import type { Notification } from './sources';

/**
 * What one committed ingest flush touched; the read path invalidates its
 * cache from it. Account/symbol pairs are joined with a NUL, which ids can
 * never contain (validation rejects it).
 */
export interface ChangeSet {
  /** Orders with a new order event or fill. */
  orderIds: ReadonlySet<string>;
  /** Accounts with a new order event or fill. */
  accountIds: ReadonlySet<string>;
  /** `${account_id}\u0000${symbol}` of every new fill (positions). */
  accountSymbols: ReadonlySet<string>;
}

/** Joins an account and a symbol into a ChangeSet key. */
export function accountSymbolKey(accountId: string, symbol: string): string {
  return `${accountId}\u0000${symbol}`;
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
