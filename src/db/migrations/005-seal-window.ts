import type { Migration } from './migration';

/**
 * The last step of an ingest flush as one server-side call (issue #9), so a
 * flush costs one round trip from its COPY to its commit instead of four
 * (lock the sources, advance their marks, NOTIFY, COMMIT): the flush sends
 * `SELECT orderflow_seal_window(…); COMMIT` in one simple-protocol message.
 *
 * `orderflow_seal_window` locks the window's sources FOR UPDATE in id order
 * (the order lockSources uses, so flushes never deadlock), waiting for a
 * flush of the same sources still in flight. It then checks that every
 * source still has the epoch the flush was written for and exactly the
 * high-water mark the flush expects (the last seq of the windows before
 * it). Only then does it set the new marks and send the cache NOTIFY
 * (delivered at commit). Any mismatch (a newer stream fenced the source, an
 * earlier window has not committed, an earlier attempt of this flush did)
 * raises SQLSTATE OF001 before anything changed; the COMMIT in the same
 * message is then skipped, the flush rolls back and is redone the careful
 * way (locks first, decisions in the service). Every statement of a
 * plpgsql function takes a fresh snapshot under READ COMMITTED, so the
 * check after the lock sees the mark the waited-for flush committed.
 */
export const migration005: Migration = {
  version: 5,
  name: 'seal_window',
  sql: `
CREATE FUNCTION orderflow_seal_window(
  p_source_ids text[], p_epochs bigint[], p_marks bigint[], p_new_marks bigint[], p_channel text, p_payload text
) RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  n integer := cardinality(p_source_ids);
  matched integer;
BEGIN
  IF n IS NULL OR n <> cardinality(p_epochs) OR n <> cardinality(p_marks) OR n <> cardinality(p_new_marks)
     OR n <> (SELECT count(DISTINCT id) FROM unnest(p_source_ids) AS u(id)) THEN
    RAISE EXCEPTION 'orderflow_seal_window: the arrays must have one entry per distinct source' USING ERRCODE = 'OF002';
  END IF;
  PERFORM 1 FROM sources s WHERE s.source_id = ANY (p_source_ids) ORDER BY s.source_id FOR UPDATE OF s;
  SELECT count(*) INTO matched
    FROM unnest(p_source_ids, p_epochs, p_marks) AS w(source_id, epoch, mark)
    JOIN sources s ON s.source_id = w.source_id AND s.epoch = w.epoch AND s.last_seq = w.mark;
  IF matched <> n THEN
    RAISE EXCEPTION 'orderflow_seal_window: % of % sources no longer have the epoch and mark the flush expects', n - matched, n
      USING ERRCODE = 'OF001';
  END IF;
  UPDATE sources s SET last_seq = w.new_mark, updated_at = now()
    FROM unnest(p_source_ids, p_new_marks) AS w(source_id, new_mark)
   WHERE s.source_id = w.source_id AND s.last_seq <> w.new_mark;
  IF p_payload IS NOT NULL THEN
    PERFORM pg_notify(p_channel, p_payload);
  END IF;
END
$$;
COMMENT ON FUNCTION orderflow_seal_window(text[], bigint[], bigint[], bigint[], text, text)
  IS 'Last step of an ingest flush: lock the sources, check epochs and marks, advance the marks, NOTIFY. Raises OF001 on a mismatch.';
`,
};
