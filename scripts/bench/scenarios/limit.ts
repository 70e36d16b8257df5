import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { benchFillGenerator, copyFills, dropFillsIndexes, psqlCopyFills, writeFillsFile } from '../lib/fills-load';
import { assertFillsCompatible, describeFills, withClient, type BenchDatabase } from '../lib/postgres';
import { processTreeCpuMicros } from '../lib/proc-stats';
import { fmt, progress } from '../lib/progress';
import { FigureCollector } from '../lib/results';
import type { BenchContext, Scenario, ScenarioOutput } from '../lib/scenario';

/** Id of the limit every write figure is compared with: the faster of psql \copy and bare COPY, per run. */
export const LIMIT_FIGURE_ID = 'limit.best_rows_per_sec';

/**
 * The physical limit: the same fill rows loaded into the orderflow schema
 * (migrations applied, so the same indexes) by `psql \copy` and by a bare
 * pg-copy-streams COPY in large chunks. Plus one reference load with the
 * indexes dropped, which shows what the indexes cost.
 */
export const limitScenario: Scenario = {
  id: 'limit',
  title: 'Physical limit: COPY of fill rows into the orderflow schema',
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const { plan, options } = ctx;
    const figures = new FigureCollector();
    figures.define({ id: LIMIT_FIGURE_ID, label: 'COPY limit (best of psql \\copy and bare COPY)', unit: 'rows/s', better: 'higher' });
    figures.define({ id: 'limit.psql_rows_per_sec', label: 'psql \\copy, orderflow schema', unit: 'rows/s', better: 'higher', ratioTo: LIMIT_FIGURE_ID });
    figures.define({ id: 'limit.psql_pg_cpu_us_per_row', label: 'psql \\copy: PostgreSQL CPU per row', unit: 'µs/row', better: 'lower' });
    figures.define({ id: 'limit.copy_rows_per_sec', label: `bare pg-copy-streams COPY (${fmt(plan.copyChunkRows)}-row chunks), orderflow schema`, unit: 'rows/s', better: 'higher', ratioTo: LIMIT_FIGURE_ID });
    figures.define({ id: 'limit.copy_pg_cpu_us_per_row', label: 'bare COPY: PostgreSQL CPU per row', unit: 'µs/row', better: 'lower' });
    figures.define({ id: 'limit.copy_node_cpu_us_per_row', label: 'bare COPY: Node CPU per row (encode + send)', unit: 'µs/row', better: 'lower' });
    figures.define({ id: 'limit.psql_noindex_rows_per_sec', label: 'psql \\copy, fills indexes dropped (reference)', unit: 'rows/s', better: 'higher', ratioTo: LIMIT_FIGURE_ID });
    const runs: Array<Record<string, unknown>> = [];
    const notes: string[] = [];

    // Schema facts for the report, and a check that the rows still fit it.
    const probe = await ctx.cluster.createDatabase('limit_schema', true);
    const schema = await withClient(probe.url, (c) => describeFills(c)).finally(() => probe.drop());
    assertFillsCompatible(schema);
    notes.push(`fills indexes at this commit: ${schema.indexes.map((d) => d.replace(/^CREATE (UNIQUE )?INDEX /, '')).join('; ') || 'none'}`);
    notes.push(`${fmt(plan.limitRows)} fill rows per load, generated once with a fixed seed (generation not timed); each load into a fresh, migrated database; each COPY its own transaction.`);

    let file: string | undefined;
    if (ctx.psqlPath) {
      file = path.join(ctx.tmpDir, `fills-${plan.limitRows}.tsv`);
      progress('limit', `writing ${fmt(plan.limitRows)} rows to ${file}`);
      await writeFillsFile(file, plan.limitRows);
    } else {
      notes.push('psql is not installed: the psql \\copy figures are missing (apt-get install postgresql-client).');
    }

    for (let run = 1; run <= options.runs; run++) {
      const record: Record<string, unknown> = { run };
      let psqlRate = Number.NaN;
      if (ctx.psqlPath && file) {
        const r = await timedLoad(ctx, 'limit_psql', false, (url) => psqlCopyFills(ctx.psqlPath!, url, file!));
        psqlRate = r.rowsPerSec;
        figures.add('limit.psql_rows_per_sec', r.rowsPerSec);
        figures.add('limit.psql_pg_cpu_us_per_row', r.pgCpuMicros / r.rows);
        record.psql = r;
        progress('limit', `run ${run}/${options.runs} psql \\copy: ${fmt(r.rowsPerSec)} rows/s, PostgreSQL ${fmt(r.pgCpuMicros / r.rows, 2)} µs/row`);
      }

      // Bare COPY: rows are built outside the timed part, encoding is inside it.
      let copyMs = 0;
      let copyRows = 0;
      let copyPgMicros = 0;
      let copyNodeMicros = 0;
      const db = await ctx.cluster.createDatabase('limit_copy', true);
      try {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        try {
          await client.query('CHECKPOINT');
          const next = benchFillGenerator();
          for (let first = 1; first <= plan.limitRows; first += plan.copyChunkRows) {
            const chunk = Array.from({ length: Math.min(plan.copyChunkRows, plan.limitRows - first + 1) }, next);
            const pg0 = processTreeCpuMicros(ctx.postmasterPid);
            const cpu0 = process.cpuUsage();
            const t0 = performance.now();
            copyRows += await copyFills(client, chunk);
            copyMs += performance.now() - t0;
            const cpu = process.cpuUsage(cpu0);
            copyNodeMicros += cpu.user + cpu.system;
            copyPgMicros += processTreeCpuMicros(ctx.postmasterPid) - pg0;
          }
        } finally {
          await client.end();
        }
      } finally {
        await db.drop();
      }
      if (copyRows !== plan.limitRows) throw new Error(`bare COPY stored ${copyRows} rows, expected ${plan.limitRows}`);
      const copyRate = (copyRows * 1_000) / copyMs;
      figures.add('limit.copy_rows_per_sec', copyRate);
      figures.add('limit.copy_pg_cpu_us_per_row', copyPgMicros / copyRows);
      figures.add('limit.copy_node_cpu_us_per_row', copyNodeMicros / copyRows);
      record.copy = { rows: copyRows, ms: copyMs, rowsPerSec: copyRate, pgCpuMicros: copyPgMicros, nodeCpuMicros: copyNodeMicros };
      progress('limit', `run ${run}/${options.runs} bare COPY: ${fmt(copyRate)} rows/s, PostgreSQL ${fmt(copyPgMicros / copyRows, 2)} µs/row, Node ${fmt(copyNodeMicros / copyRows, 2)} µs/row`);
      figures.add(LIMIT_FIGURE_ID, Number.isFinite(psqlRate) ? Math.max(psqlRate, copyRate) : copyRate);

      if (ctx.psqlPath && file) {
        const r = await timedLoad(ctx, 'limit_noindex', true, (url) => psqlCopyFills(ctx.psqlPath!, url, file!));
        figures.add('limit.psql_noindex_rows_per_sec', r.rowsPerSec);
        record.psqlNoIndex = r;
        progress('limit', `run ${run}/${options.runs} psql \\copy without indexes: ${fmt(r.rowsPerSec)} rows/s`);
      }
      runs.push(record);
    }
    return { figures: figures.results(), runs, notes };
  },
};

interface TimedLoad {
  rows: number;
  ms: number;
  rowsPerSec: number;
  pgCpuMicros: number;
}

/** Runs `load` into a fresh migrated database (indexes dropped when `noIndexes`), timing it and PostgreSQL's CPU. */
async function timedLoad(ctx: BenchContext, label: string, noIndexes: boolean, load: (url: string) => Promise<number>): Promise<TimedLoad> {
  const db: BenchDatabase = await ctx.cluster.createDatabase(label, true);
  try {
    await withClient(db.url, async (c) => {
      if (noIndexes) await dropFillsIndexes(c);
      // Start every load from a clean checkpoint, so an earlier load's dirty pages are not flushed inside this one.
      await c.query('CHECKPOINT');
    });
    const pg0 = processTreeCpuMicros(ctx.postmasterPid);
    const t0 = performance.now();
    const rows = await load(db.url);
    const ms = performance.now() - t0;
    const pgCpuMicros = processTreeCpuMicros(ctx.postmasterPid) - pg0;
    if (rows !== ctx.plan.limitRows) throw new Error(`${label} stored ${rows} rows, expected ${ctx.plan.limitRows}`);
    return { rows, ms, rowsPerSec: (rows * 1_000) / ms, pgCpuMicros };
  } finally {
    await db.drop();
  }
}
