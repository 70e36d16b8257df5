import type { ChangeSet } from './change-set';

/**
 * Invalidation tags of cached reads, and the tags a committed flush touches.
 * Reads and invalidation both use these functions, so they cannot disagree.
 * Tags use a NUL separator, which ids can never contain.
 */

/** Order state (GetOrder, BatchGetOrders) and ListFills pages filtered by this order. */
export function orderTag(orderId: string): string {
  return `o\u0000${orderId}`;
}

/** ListFills pages filtered by this account (new fills carry their account). */
export function accountTag(accountId: string): string {
  return `a\u0000${accountId}`;
}

/** GetPosition of one account in one symbol. */
export function positionTag(accountId: string, symbol: string): string {
  return `p\u0000${accountId}\u0000${symbol}`;
}

/**
 * Reads that any flush may change: ListOrders pages (an order's status can
 * change through a fill whose account differs from the order's, so an
 * account tag would not be exact) and ListFills pages without an account or
 * order filter.
 */
export const ANY_CHANGE_TAG = '*';

/** Every tag a committed flush invalidates. */
export function tagsOfChangeSet(changes: ChangeSet): string[] {
  const tags: string[] = [];
  for (const orderId of changes.orderIds) tags.push(orderTag(orderId));
  for (const accountId of changes.accountIds) tags.push(accountTag(accountId));
  for (const pair of changes.accountSymbols) {
    const cut = pair.indexOf('\u0000');
    tags.push(positionTag(pair.slice(0, cut), pair.slice(cut + 1)));
  }
  if (tags.length > 0) tags.push(ANY_CHANGE_TAG);
  return tags;
}
