import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../db/types';
import { InvalidArgumentError } from '../errors';

/** Which listing a token belongs to; a token of one is never accepted by the other. */
export type PageTokenKind = 'orders' | 'fills';

/** Filters of the request a token was issued for; only strings, absent = ''. */
export type PageTokenFilters = Readonly<Record<string, string>>;

/** A cursor: flat string fields (bigints as decimal strings). */
export type PageCursor = Readonly<Record<string, string>>;

/** Longest token accepted, characters; real ones are about 150. */
const MAX_TOKEN_CHARS = 2_048;
const MAC_BYTES = 32;
const MAC_DOMAIN = 'orderflow.page-token.v1';

/**
 * Opaque, tamper-evident page tokens: `base64url(cursor JSON) "." base64url(HMAC-SHA256)`.
 * The MAC covers the kind, the request's filters and the cursor, so a token
 * cannot be edited, nor replayed with other filters or on the other list.
 * page_size is not covered: a client may change it between pages.
 */
export class PageTokenCodec {
  constructor(private readonly secret: Buffer) {
    if (secret.length < 16) throw new TypeError('page token secret must be at least 16 bytes');
  }

  /** Encodes the cursor of the last row of a page. */
  encode(kind: PageTokenKind, filters: PageTokenFilters, cursor: PageCursor): string {
    const body = Buffer.from(JSON.stringify(cursor)).toString('base64url');
    return `${body}.${this.mac(kind, filters, body).toString('base64url')}`;
  }

  /**
   * Decodes a token issued for the same kind and filters.
   * Throws InvalidArgumentError (field `page_token`) for anything else.
   */
  decode(kind: PageTokenKind, filters: PageTokenFilters, token: string, fields: readonly string[]): PageCursor {
    const invalid = () => new InvalidArgumentError('page_token', 'is not a token this service issued for these filters');
    if (token.length > MAX_TOKEN_CHARS) throw invalid();
    const dot = token.indexOf('.');
    if (dot <= 0) throw invalid();
    const body = token.slice(0, dot);
    const macText = token.slice(dot + 1);
    const given = Buffer.from(macText, 'base64url');
    // Node decodes base64 leniently; only the canonical spelling is accepted.
    if (given.length !== MAC_BYTES || given.toString('base64url') !== macText) throw invalid();
    if (!timingSafeEqual(given, this.mac(kind, filters, body))) throw invalid();
    let cursor: unknown;
    try {
      cursor = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      throw invalid();
    }
    if (typeof cursor !== 'object' || cursor === null || Array.isArray(cursor)) throw invalid();
    const record = cursor as Record<string, unknown>;
    if (!fields.every((f) => typeof record[f] === 'string') || Object.keys(record).length !== fields.length) throw invalid();
    return record as PageCursor;
  }

  private mac(kind: PageTokenKind, filters: PageTokenFilters, body: string): Buffer {
    const canonical = JSON.stringify(Object.entries(filters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return createHmac('sha256', this.secret).update(`${MAC_DOMAIN}\u0000${kind}\u0000${canonical}\u0000${body}`).digest();
  }
}

/** Reads the page token secret that migration 003 generated (shared by every instance on the database). */
export async function loadPageTokenSecret(db: Queryable): Promise<Buffer> {
  const { rows } = await db.query<{ secret: Buffer }>('page_tokens.secret', 'SELECT secret FROM page_token_keys WHERE key_id = 1');
  if (!rows[0]) throw new Error('The page token secret is missing (migration 003 not applied?).');
  return rows[0].secret;
}
