import { continueTagHash, continueTagHashAscii, finishTagHash, tagHash, TAG_HASH_START, type TagHash } from '../db/tag-hash';

/**
 * Invalidation tags of cached reads, and their hashes. Reads and
 * invalidation both use these functions, so they cannot disagree. Tags use a
 * NUL separator, which ids can never contain.
 *
 * The ingest path hashes the tags of each event as it arrives (db/tag-hash.ts)
 * instead of keeping the ids: holding every id of a large window in Sets
 * cost 1.6–3.3 µs per event at saturation (the strings outlive the young
 * generation) and ~30–50 MB of peak RSS (measured A/B, issue #9).
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

const ORDER_STATE = continueTagHash(TAG_HASH_START, 'o\u0000');
const ACCOUNT_STATE = continueTagHash(TAG_HASH_START, 'a\u0000');
const POSITION_STATE = continueTagHash(TAG_HASH_START, 'p\u0000');

/** tagHash(orderTag(orderId)), without building the tag. */
export function orderTagHash(orderId: string): TagHash {
  return finishTagHash(continueTagHash(ORDER_STATE, orderId));
}

/** tagHash(accountTag(accountId)), without building the tag. */
export function accountTagHash(accountId: string): TagHash {
  return finishTagHash(continueTagHash(ACCOUNT_STATE, accountId));
}

/** tagHash(positionTag(accountId, symbol)), without building the tag. */
export function positionTagHash(accountId: string, symbol: string): TagHash {
  return finishTagHash(continueTagHash(continueTagHash(continueTagHash(POSITION_STATE, accountId), '\u0000'), symbol));
}

/** orderTagHash of an id given as ASCII bytes. */
export function orderTagHashAscii(bytes: Buffer, start: number, end: number): TagHash {
  return finishTagHash(continueTagHashAscii(ORDER_STATE, bytes, start, end));
}

/** accountTagHash of an id given as ASCII bytes. */
export function accountTagHashAscii(bytes: Buffer, start: number, end: number): TagHash {
  return finishTagHash(continueTagHashAscii(ACCOUNT_STATE, bytes, start, end));
}

/** positionTagHash of an account and a symbol given as ASCII bytes. */
export function positionTagHashAscii(bytes: Buffer, accountStart: number, accountEnd: number, symbolStart: number, symbolEnd: number): TagHash {
  const account = continueTagHashAscii(POSITION_STATE, bytes, accountStart, accountEnd);
  return finishTagHash(continueTagHashAscii(continueTagHash(account, '\u0000'), bytes, symbolStart, symbolEnd));
}

/** tagHash(ANY_CHANGE_TAG). */
export const ANY_CHANGE_TAG_HASH: TagHash = tagHash(ANY_CHANGE_TAG);
