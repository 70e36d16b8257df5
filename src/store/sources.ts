import type { Queryable } from '../db/types';

/**
 * The sources table: one row per producing source with its high-water mark
 * (`last_seq`, highest seq committed, stored or quarantined) and its fencing
 * `epoch` (bumped by every Hello). 64-bit values travel as decimal strings.
 */

/** A source's committed high-water mark and current epoch. */
export interface SourceState {
  lastSeq: string;
  epoch: string;
}

/**
 * Registers a new stream for `sourceId`: creates the row or bumps its epoch,
 * and returns the committed mark. The UPDATE waits for the row lock held by
 * any flush of this source in flight (on any instance), so the mark returned
 * includes that flush, and every later flush of the older epoch is refused.
 */
export async function openSource(q: Queryable, sourceId: string): Promise<SourceState> {
  const { rows } = await q.query<{ last_seq: string; epoch: string }>(
    { op: 'sources.open', table: 'sources' },
    `INSERT INTO sources AS s (source_id) VALUES ($1)
     ON CONFLICT (source_id) DO UPDATE SET epoch = s.epoch + 1, updated_at = now()
     RETURNING s.last_seq::text AS last_seq, s.epoch::text AS epoch`,
    [sourceId],
  );
  const row = rows[0]!;
  return { lastSeq: row.last_seq, epoch: row.epoch };
}

/** Result of lockSources: each locked source's state plus the transaction's identity. */
export interface LockedSources {
  sources: Map<string, SourceState>;
  /** The transaction id (xid8 as text), to ask pg_xact_status later when COMMIT's outcome is unknown. */
  xid: string;
  /** The backend pid and its start time, to end a backend left stranded by a network stall. */
  backendPid: number;
  backendStart: string;
}

/**
 * Locks the rows of `sourceIds` FOR UPDATE in ascending id order (rows are
 * locked in ORDER BY order, so two flushes never deadlock) and returns their
 * state. Also returns the transaction's id and backend, fetched in the same
 * round trip.
 */
export async function lockSources(q: Queryable, sourceIds: readonly string[]): Promise<LockedSources> {
  const sorted = [...sourceIds].sort();
  const { rows } = await q.query<{ source_id: string; last_seq: string; epoch: string; xid: string; pid: number; backend_start: string }>(
    { op: 'sources.lock', table: 'sources' },
    `SELECT s.source_id, s.last_seq::text AS last_seq, s.epoch::text AS epoch,
            pg_current_xact_id()::text AS xid, pg_backend_pid() AS pid,
            (SELECT a.backend_start::text FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()) AS backend_start
       FROM sources s
      WHERE s.source_id = ANY($1::text[])
      ORDER BY s.source_id
        FOR UPDATE OF s`,
    [sorted],
  );
  const sources = new Map<string, SourceState>();
  for (const row of rows) sources.set(row.source_id, { lastSeq: row.last_seq, epoch: row.epoch });
  const first = rows[0];
  return { sources, xid: first?.xid ?? '', backendPid: first?.pid ?? 0, backendStart: first?.backend_start ?? '' };
}

/** Sets the high-water marks of the given sources (same length arrays). */
export async function advanceSources(q: Queryable, sourceIds: readonly string[], lastSeqs: readonly string[]): Promise<void> {
  if (sourceIds.length === 0) return;
  await q.query(
    { op: 'sources.advance', table: 'sources' },
    `UPDATE sources AS s SET last_seq = v.last_seq, updated_at = now()
       FROM unnest($1::text[], $2::bigint[]) AS v(source_id, last_seq)
      WHERE s.source_id = v.source_id`,
    [sourceIds, lastSeqs],
  );
}

/** Outcome of a transaction as PostgreSQL reports it (pg_xact_status). */
export type TransactionStatus = 'committed' | 'aborted' | 'in progress' | 'unknown';

/** Asks whether transaction `xid` committed; 'unknown' when it is too old to tell, 'aborted' when the server never knew it. */
export async function transactionStatus(q: Queryable, xid: string): Promise<TransactionStatus> {
  let status: string | null | undefined;
  try {
    const { rows } = await q.query<{ status: string | null }>({ op: 'sources.xact_status' }, 'SELECT pg_xact_status($1::xid8) AS status', [xid]);
    status = rows[0]?.status;
  } catch (err) {
    // 22023 "transaction ID … is in the future": the server crashed before the
    // xid reached its WAL, so the transaction cannot have committed.
    if ((err as { sqlState?: string }).sqlState === '22023') return 'aborted';
    throw err;
  }
  return status === 'committed' || status === 'aborted' || status === 'in progress' ? status : 'unknown';
}

/**
 * Terminates the backend `pid` if it is still the one that started at
 * `backendStart` (a stale session whose client gave up on it, e.g. after a
 * network stall, still holding its row locks). Returns true when a backend
 * was signalled.
 */
export async function terminateStaleBackend(q: Queryable, pid: number, backendStart: string): Promise<boolean> {
  const { rows } = await q.query<{ terminated: boolean }>(
    { op: 'sources.terminate_stale' },
    'SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2 AND pid <> pg_backend_pid()',
    [pid, backendStart],
  );
  return rows[0]?.terminated === true;
}
