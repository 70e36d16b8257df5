/**
 * The 30-bit hash the query cache indexes its invalidation tags by (always
 * a V8 small integer, so a Map keyed by it never hashes a string). Callers
 * that know a tag's parts can hash them without building the tag
 * (store/cache-tags.ts). Two tags with one hash invalidate each other's
 * entries: one extra miss, never a stale read.
 */
export type TagHash = number;

/** The FNV-1a state of the empty string. */
export const TAG_HASH_START = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const TAG_HASH_MASK = 0x3fffffff;

/** Continues an FNV-1a state over the UTF-16 code units of `text`. */
export function continueTagHash(state: number, text: string): number {
  let h = state;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h;
}

/** continueTagHash over bytes that are ASCII: the same state as over the string they spell. */
export function continueTagHashAscii(state: number, bytes: Buffer, start: number, end: number): number {
  let h = state;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
  return h;
}

/** The hash of a finished state. */
export function finishTagHash(state: number): TagHash {
  return state & TAG_HASH_MASK;
}

/** The hash of a whole tag. */
export function tagHash(tag: string): TagHash {
  return finishTagHash(continueTagHash(TAG_HASH_START, tag));
}
