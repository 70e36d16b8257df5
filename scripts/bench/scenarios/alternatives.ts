import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { benchFills, insertFillsMultiRow, insertFillsOneByOne } from '../lib/fills-load';
import { assertFillsCompatible, describeFills } from '../lib/postgres';
import { processTreeCpuMicros } from '../lib/proc-stats';
import { fmt, progress } from '../lib/progress';
import { FigureCollector } from '../lib/results';
import type { BenchContext, Scenario, ScenarioOutput } from '../lib/scenario';
import type { FillRow } from '../lib/rows';
import { LIMIT_FIGURE_ID } from './limit';

/**
 * What a team without orderflow would write, into the same schema with the
 * same rows: one INSERT per row (each its own transaction, so one WAL flush
 * per row), and 1,000-row multi-row INSERTs through `unnest`.
 */
export const alternativesScenario: Scenario = {
  id: 'alternatives',
  title: 'Alternatives: INSERT per row and 1,000-row multi-row INSERT',
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const { plan, options } = ctx;
    const figures = new FigureCollector();
    figures.define({ id: 'alternatives.per_row_rows_per_sec', label: 'one INSERT per row (autocommit)', unit: 'rows/s', better: 'higher', ratioTo: LIMIT_FIGURE_ID });
    figures.define({ id: 'alternatives.per_row_pg_cpu_us_per_row', label: 'one INSERT per row: PostgreSQL CPU per row', unit: 'µs/row', better: 'lower' });
    figures.define({ id: 'alternatives.multi_row_rows_per_sec', label: `${fmt(plan.multiRowBatchRows)}-row INSERT … SELECT FROM unnest`, unit: 'rows/s', better: 'higher', ratioTo: LIMIT_FIGURE_ID });
    figures.define({ id: 'alternatives.multi_row_pg_cpu_us_per_row', label: 'multi-row INSERT: PostgreSQL CPU per row', unit: 'µs/row', better: 'lower' });
    const runs: Array<Record<string, unknown>> = [];
    const rows = benchFills(Math.max(plan.perRowInsertRows, plan.multiRowInsertRows));
    const notes = [
      `One INSERT per row: the first ${fmt(plan.perRowInsertRows)} rows of the same sequence; rows/s over that sample (the cost per row does not depend on the table size at this scale).`,
      `Multi-row INSERT: the first ${fmt(plan.multiRowInsertRows)} rows, ${fmt(plan.multiRowBatchRows)} per statement, each statement its own transaction.`,
    ];

    for (let run = 1; run <= options.runs; run++) {
      const perRow = await timedInsert(ctx, 'alt_per_row', rows.slice(0, plan.perRowInsertRows), (c, r) => insertFillsOneByOne(c, r));
      figures.add('alternatives.per_row_rows_per_sec', perRow.rowsPerSec);
      figures.add('alternatives.per_row_pg_cpu_us_per_row', perRow.pgCpuMicros / perRow.rows);
      progress('alternatives', `run ${run}/${options.runs} INSERT per row: ${fmt(perRow.rowsPerSec)} rows/s`);
      const multi = await timedInsert(ctx, 'alt_multi_row', rows.slice(0, plan.multiRowInsertRows), (c, r) => insertFillsMultiRow(c, r, plan.multiRowBatchRows));
      figures.add('alternatives.multi_row_rows_per_sec', multi.rowsPerSec);
      figures.add('alternatives.multi_row_pg_cpu_us_per_row', multi.pgCpuMicros / multi.rows);
      progress('alternatives', `run ${run}/${options.runs} multi-row INSERT: ${fmt(multi.rowsPerSec)} rows/s`);
      runs.push({ run, perRow, multiRow: multi });
    }
    return { figures: figures.results(), runs, notes };
  },
};

interface TimedInsert {
  rows: number;
  ms: number;
  rowsPerSec: number;
  pgCpuMicros: number;
}

async function timedInsert(ctx: BenchContext, label: string, rows: readonly FillRow[], insert: (client: pg.Client, rows: readonly FillRow[]) => Promise<number>): Promise<TimedInsert> {
  const db = await ctx.cluster.createDatabase(label, true);
  try {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      assertFillsCompatible(await describeFills(client));
      await client.query('CHECKPOINT');
      const pg0 = processTreeCpuMicros(ctx.postmasterPid);
      const t0 = performance.now();
      const stored = await insert(client, rows);
      const ms = performance.now() - t0;
      const pgCpuMicros = processTreeCpuMicros(ctx.postmasterPid) - pg0;
      if (stored !== rows.length) throw new Error(`${label} stored ${stored} rows, expected ${rows.length}`);
      return { rows: stored, ms, rowsPerSec: (stored * 1_000) / ms, pgCpuMicros };
    } finally {
      await client.end();
    }
  } finally {
    await db.drop();
  }
}
