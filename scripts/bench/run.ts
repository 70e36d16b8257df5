/**
 * `npm run bench`: starts its own embedded PostgreSQL (default durability)
 * and, per measurement, a fresh database and a fresh service process, then
 * runs the scenarios and writes results.json, results.md and SVG plots to
 * bench/results/. Progress goes to stderr. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, planFor, USAGE, type BenchOptions } from './lib/args';
import { SERVICE_MAIN_JS, stopAllChildren } from './lib/child';
import { BenchCluster, benchTempDir } from './lib/postgres';
import { progress } from './lib/progress';
import { resolveRatios, type BenchMeta, type BenchResults, type ScenarioResult } from './lib/results';
import type { BenchContext, Scenario } from './lib/scenario';
import { ScenarioUnavailableError } from './lib/unavailable';
import { renderMarkdown } from './report/markdown';
import { writePlots } from './report/plots';
import { evaluateTargets } from './report/targets';
import { alternativesScenario } from './scenarios/alternatives';
import { floorScenario } from './scenarios/floor';
import { ingestScenario } from './scenarios/orderflow-ingest';
import { readsScenario } from './scenarios/reads';
import { sweepScenario } from './scenarios/batch-window-sweep';
import { limitScenario } from './scenarios/limit';

const SCENARIOS: readonly Scenario[] = [limitScenario, alternativesScenario, ingestScenario, sweepScenario, floorScenario, readsScenario];

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const plan = planFor(options);
  const startedAt = new Date();
  const t0 = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  progress('bench', `runs=${options.runs}${options.quick ? ' (quick)' : ''}, scenarios: ${options.only.join(', ')}; load average ${loadAtStart.toFixed(2)} on ${os.cpus().length} cores`);
  if (loadAtStart > 0.5) progress('bench', 'warning: the machine is busy; absolute figures will be low, ratios measured in the same run still hold better');

  const tmpDir = await benchTempDir('run');
  progress('bench', 'starting embedded PostgreSQL (fsync on, synchronous_commit on)');
  const cluster = await BenchCluster.start();
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress('bench', 'interrupted: stopping children and PostgreSQL');
    void (async () => {
      await stopAllChildren();
      await cluster.stop().catch(() => undefined);
      await fs.rm(tmpDir, { recursive: true, force: true });
      process.exit(130);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const scenarioResults: ScenarioResult[] = [];
  let meta: BenchMeta;
  try {
    const pgInfo = await cluster.describe();
    const ctx: BenchContext = { options, plan, cluster, postmasterPid: await cluster.postmasterPid(), tmpDir, psqlPath: findPsql() };
    progress('bench', `${pgInfo.version.split(' on ')[0]} on port ${cluster.port}; psql: ${ctx.psqlPath ?? 'not installed'}`);
    for (const scenario of SCENARIOS.filter((s) => options.only.includes(s.id))) {
      scenarioResults.push(await runScenario(scenario, ctx));
    }
    meta = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      elapsedMs: performance.now() - t0,
      gitCommit: git(['rev-parse', 'HEAD']),
      gitBranch: git(['rev-parse', '--abbrev-ref', 'HEAD']),
      hostname: os.hostname(),
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memoryBytes: os.totalmem(),
      node: process.version,
      postgres: pgInfo.version,
      postgresSettings: { fsync: pgInfo.fsync, synchronous_commit: pgInfo.synchronousCommit, shared_buffers: pgInfo.sharedBuffers },
      psql: ctx.psqlPath ? psqlVersion(ctx.psqlPath) : null,
      runs: options.runs,
      quick: options.quick,
      only: options.only,
      ingestClient: options.ingestClient,
      serviceMain: path.relative(process.cwd(), options.serviceMain ?? SERVICE_MAIN_JS),
      loadAverage: { start: loadAtStart, end: os.loadavg()[0]! },
    };
  } finally {
    await stopAllChildren();
    await cluster.stop().catch((err: unknown) => progress('bench', `stopping PostgreSQL failed: ${(err as Error).message}`));
    await fs.rm(tmpDir, { recursive: true, force: true });
  }

  const allFigures = scenarioResults.flatMap((s) => s.figures);
  resolveRatios(allFigures);
  const unavailable = new Map(scenarioResults.filter((s) => s.status !== 'ok' || s.reason).map((s) => [s.id as string, s.reason ?? s.status]));
  // The read targets also depend on the orderflow read path being there.
  const results: BenchResults = { meta, scenarios: scenarioResults, targets: evaluateTargets(allFigures, unavailable) };

  await fs.mkdir(options.outDir, { recursive: true });
  await fs.writeFile(path.join(options.outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  let plots: Array<{ file: string; title: string }> = [];
  try {
    plots = await writePlots(results, options.outDir);
  } catch (err) {
    progress('bench', `plots failed: ${(err as Error).stack ?? String(err)}`);
  }
  await fs.writeFile(path.join(options.outDir, 'results.md'), renderMarkdown(results, plots));
  progress('bench', `wrote ${path.relative(process.cwd(), options.outDir) || '.'}/results.json, results.md and ${plots.length} plot(s) in ${Math.round((performance.now() - t0) / 1_000)} s`);
  for (const t of results.targets) progress('target', `${t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS'} ${t.text}: ${t.measured}`);
  return scenarioResults.some((s) => s.status === 'failed') ? 1 : 0;
}

/** Runs one scenario; unavailability and failures become its status instead of ending the run. */
async function runScenario(scenario: Scenario, ctx: BenchContext): Promise<ScenarioResult> {
  const t0 = performance.now();
  progress(scenario.id, scenario.title);
  try {
    const out = await scenario.run(ctx);
    return {
      id: scenario.id,
      title: scenario.title,
      status: 'ok',
      reason: out.partialReason,
      figures: out.figures,
      runs: out.runs,
      distributions: out.distributions,
      sweep: out.sweep,
      notes: out.notes,
      elapsedMs: performance.now() - t0,
    };
  } catch (err) {
    await stopAllChildren();
    if (err instanceof ScenarioUnavailableError) {
      progress(scenario.id, `not available: ${err.reason}`);
      return { id: scenario.id, title: scenario.title, status: 'unavailable', reason: err.reason, figures: [], runs: [], elapsedMs: performance.now() - t0 };
    }
    progress(scenario.id, `FAILED: ${(err as Error).stack ?? String(err)}`);
    return { id: scenario.id, title: scenario.title, status: 'failed', reason: (err as Error).message, figures: [], runs: [], elapsedMs: performance.now() - t0 };
  }
}

function findPsql(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v psql'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function psqlVersion(psql: string): string {
  try {
    return execFileSync(psql, ['--version'], { encoding: 'utf8' }).trim().replace(/^psql \(PostgreSQL\) /, '');
  } catch {
    return 'unknown';
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    void stopAllChildren().finally(() => process.exit(1));
  },
);
