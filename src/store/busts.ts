import { runBatch, type BatchReport } from '../db/batch';
import { CancelledError } from '../errors';
import type { Pool } from '../db/types';
import { ChangeSetBuilder, type ChangeSet, type FlushHooks } from './change-set';

/**
 * Ids per bust chunk. Large on purpose: fills has no fill_id index (see
 * migration 004), so each chunk is one scan of fills hashed against its ids.
 */
export const DEFAULT_BUST_CHUNK_SIZE = 2_500;
/** Bust chunks in flight at once. Chunks touch disjoint fills (ids are deduplicated first), so they never wait on each other. */
export const DEFAULT_BUST_CONCURRENCY = 2;

/** What busting a set of fill ids did. */
export interface BustResult {
  /** Fill rows newly marked busted; fills already busted are not counted again. */
  busted: number;
  /** Requested ids with no stored fill, in request order. */
  notFound: string[];
  /** The batch module's report (chunks, durations, failures). */
  report: BatchReport;
}

/** Options of FillBuster. */
export interface FillBusterOptions {
  pool: Pool;
  /** The read path's hooks: NOTIFY inside each chunk's transaction, local invalidation after its COMMIT. */
  hooks: Required<Pick<FlushHooks, 'beforeCommit' | 'afterCommit'>>;
  /** Ids per chunk. Default DEFAULT_BUST_CHUNK_SIZE (2,500). */
  chunkSize?: number;
  /** Chunks at once. Default DEFAULT_BUST_CONCURRENCY (2). */
  concurrency?: number;
}

/**
 * Marks the chunk's fills busted. `busted_at IS NULL` makes it idempotent: a
 * fill busted before (or by a concurrent call, which this UPDATE waits for
 * and then re-checks) is neither updated nor returned.
 */
const BUST_SQL = `UPDATE fills AS t SET busted_at = now(), bust_reason = $2
  FROM unnest($1::text[]) AS u(fill_id)
 WHERE t.fill_id = u.fill_id AND t.busted_at IS NULL
 RETURNING t.fill_id, t.order_id, t.account_id, t.symbol`;

/** Which of the ids not busted by this chunk exist at all (busted before); the rest are unknown. */
const EXISTING_SQL = 'SELECT DISTINCT f.fill_id FROM fills f WHERE f.fill_id = ANY($1::text[])';

interface BustedRow {
  fill_id: string;
  order_id: string;
  account_id: string;
  symbol: string;
}

/**
 * Busts fills in chunks through the batch module. Each chunk is one
 * transaction: UPDATE … RETURNING the busted fills' order, account and symbol,
 * NOTIFY other instances (beforeCommit), COMMIT, invalidate this instance's
 * cache (afterCommit). A reader therefore never sees a committed bust through
 * a stale cache entry of this instance.
 */
export class FillBuster {
  constructor(private readonly options: FillBusterOptions) {}

  /**
   * Busts `fillIds` (duplicates ignored) with `reason`. Chunks run in
   * stop-on-first-error mode; a failure rethrows the first chunk error.
   * Chunks that committed before it stay busted, and a retry of the same
   * call is idempotent, so the caller can simply retry.
   */
  async bust(fillIds: readonly string[], reason: string, signal?: AbortSignal): Promise<BustResult> {
    const ids = [...new Set(fillIds)];
    let busted = 0;
    const missing = new Set<string>();
    const report = await runBatch(
      ids,
      async (chunk, ctx) => {
        const outcome = await this.bustChunk(chunk, reason, ctx.signal);
        busted += outcome.rows;
        for (const id of outcome.unknown) missing.add(id);
        return outcome.rows;
      },
      { op: 'busts.fills', chunkSize: this.options.chunkSize ?? DEFAULT_BUST_CHUNK_SIZE, concurrency: this.options.concurrency ?? DEFAULT_BUST_CONCURRENCY, onError: 'stop', signal },
    );
    const failure = report.failures[0];
    if (failure) throw failure.error;
    // Aborted between chunks: what committed stays busted, but the answer would be partial.
    if (report.outcome === 'aborted') throw new CancelledError({ cause: signal?.reason });
    return { busted, notFound: ids.filter((id) => missing.has(id)), report };
  }

  /** One chunk, one transaction: bust, find the unknown ids, NOTIFY, COMMIT, invalidate locally. */
  private async bustChunk(chunk: readonly string[], reason: string, signal: AbortSignal): Promise<{ rows: number; unknown: string[] }> {
    const { pool, hooks } = this.options;
    // Set once the UPDATE ran. If COMMIT then fails its outcome is unknown (it
    // may have committed), so this instance invalidates anyway: invalidating
    // too much is always safe, a stale entry is not.
    let attempted: ChangeSet | undefined;
    try {
      const outcome = await pool.withTransaction(
        async (tx) => {
          const updated = await tx.query<BustedRow>({ op: 'busts.update', table: 'fills' }, BUST_SQL, [chunk, reason]);
          const bustedIds = new Set(updated.rows.map((r) => r.fill_id));
          const rest = chunk.filter((id) => !bustedIds.has(id));
          let unknown: string[] = [];
          if (rest.length > 0) {
            const existing = await tx.query<{ fill_id: string }>({ op: 'busts.existing', table: 'fills' }, EXISTING_SQL, [rest]);
            const known = new Set(existing.rows.map((r) => r.fill_id));
            unknown = rest.filter((id) => !known.has(id));
          }
          const changes = changeSetOf(updated.rows);
          attempted = changes;
          await hooks.beforeCommit(tx, changes);
          return { rows: updated.rowCount ?? updated.rows.length, unknown, changes };
        },
        { op: 'busts.chunk', signal },
      );
      hooks.afterCommit(outcome.changes);
      return outcome;
    } catch (err) {
      if (attempted) hooks.afterCommit(attempted);
      throw err;
    }
  }
}

/** Orders, accounts and account/symbol pairs whose cached reads a bust changes. */
function changeSetOf(rows: readonly BustedRow[]): ChangeSet {
  const changes = new ChangeSetBuilder();
  for (const row of rows) changes.addFill(row.order_id, row.account_id, row.symbol);
  return changes.build();
}
