import pg from 'pg';
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

/** Who a flush transaction is, known from its first round trip: what the writer needs when that transaction's fate is lost. */
export interface TransactionIdentity {
  /** The transaction id (xid8 as text), to ask pg_xact_status later when COMMIT's outcome is unknown. */
  xid: string;
  /** The backend pid, to end a backend left stranded by a network stall while it still runs this transaction. */
  backendPid: number;
}

/**
 * Opens a transaction and assigns its id in the same round trip (a simple
 * query of two statements): the flush needs the id before anything can go
 * wrong with its COMMIT.
 */
export async function beginIdentified(q: Queryable): Promise<TransactionIdentity> {
  const results = (await q.query({ op: 'ingest.flush.begin' }, 'BEGIN; SELECT pg_current_xact_id()::text AS xid, pg_backend_pid() AS pid')) as unknown as {
    rows: { xid: string; pid: number }[];
  }[];
  const row = results[results.length - 1]!.rows[0]!;
  return { xid: row.xid, backendPid: row.pid };
}

/**
 * Locks the rows of `sourceIds` FOR UPDATE in ascending id order (rows are
 * locked in ORDER BY order, so two flushes never deadlock) and returns their
 * state by source id.
 */
export async function lockSources(q: Queryable, sourceIds: readonly string[]): Promise<Map<string, SourceState>> {
  const sorted = [...sourceIds].sort();
  const { rows } = await q.query<{ source_id: string; last_seq: string; epoch: string }>(
    { op: 'sources.lock', table: 'sources' },
    `SELECT s.source_id, s.last_seq::text AS last_seq, s.epoch::text AS epoch
       FROM sources s
      WHERE s.source_id = ANY($1::text[])
      ORDER BY s.source_id
        FOR UPDATE OF s`,
    [sorted],
  );
  const sources = new Map<string, SourceState>();
  for (const row of rows) sources.set(row.source_id, { lastSeq: row.last_seq, epoch: row.epoch });
  return sources;
}

/** What sealing a window expects of one source, and the mark it sets. */
export interface SourceSeal {
  sourceId: string;
  /** The epoch the window was written for. */
  epoch: string;
  /** The committed mark the window expects to find (the last seq before it). */
  mark: string;
  /** The mark once the window commits (equal to `mark` when it stores nothing of the source). */
  newMark: string;
}

/** A NOTIFY to send with a commit. */
export interface Notification {
  channel: string;
  payload: string;
}

/** SQLSTATE of orderflow_seal_window when a source's epoch or mark is not what the flush expects (migration 005). */
export const SEAL_REFUSED_SQLSTATE = 'OF001';

const UNSIGNED_DECIMAL = /^[0-9]{1,20}$/;

/** What spans and logs record of sealAndCommitSql's statement: its shape, never its values. */
export const SEAL_AND_COMMIT_RECORDED_SQL = 'SELECT orderflow_seal_window(<source ids>, <epochs>, <marks>, <new marks>, <channel>, <payload>); COMMIT';

/**
 * The last round trip of a flush: `SELECT orderflow_seal_window(…); COMMIT`
 * (migration 005), one simple-protocol message, so values are inlined as
 * literals: ids and the payload through pg's escapeLiteral, 64-bit values
 * only after checking they are plain decimals. When the seal raises (OF001:
 * the sources are not as expected) PostgreSQL skips the COMMIT.
 */
export function sealAndCommitSql(seals: readonly SourceSeal[], notification: Notification | undefined): string {
  const ints = (values: string[]): string => {
    for (const v of values) if (!UNSIGNED_DECIMAL.test(v)) throw new Error(`not an unsigned 64-bit decimal: ${JSON.stringify(v)}`);
    return `ARRAY[${values.join(',')}]::bigint[]`;
  };
  const ids = `ARRAY[${seals.map((s) => pg.escapeLiteral(s.sourceId)).join(',')}]::text[]`;
  const channel = notification ? pg.escapeLiteral(notification.channel) : 'NULL';
  const payload = notification ? pg.escapeLiteral(notification.payload) : 'NULL';
  return (
    `SELECT orderflow_seal_window(${ids}, ${ints(seals.map((s) => s.epoch))}, ${ints(seals.map((s) => s.mark))}, ` +
    `${ints(seals.map((s) => s.newMark))}, ${channel}, ${payload}); COMMIT`
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
 * Terminates the backend `pid` if it still runs transaction `xid` (a stale
 * session whose client gave up on it, e.g. after a network stall, still
 * holding its row locks). A backend whose transaction ended holds no locks,
 * and a recycled pid runs another transaction, so neither is touched.
 * Returns true when a backend was signalled.
 */
export async function terminateStaleBackend(q: Queryable, pid: number, xid: string): Promise<boolean> {
  const { rows } = await q.query<{ terminated: boolean }>(
    { op: 'sources.terminate_stale' },
    'SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE pid = $1 AND backend_xid = $2::xid8::xid AND pid <> pg_backend_pid()',
    [pid, xid],
  );
  return rows[0]?.terminated === true;
}
