import type { BenchOptions, BenchPlan } from './args';
import type { BenchCluster } from './postgres';
import type { Distribution, FigureResult, ScenarioId, SweepPoint } from './results';

/** What every scenario gets. */
export interface BenchContext {
  options: BenchOptions;
  plan: BenchPlan;
  cluster: BenchCluster;
  /** Root of PostgreSQL's processes, for its CPU. */
  postmasterPid: number;
  /** Scratch directory of this run (rows files), removed at the end. */
  tmpDir: string;
  /** Path of psql, or null when it is not installed. */
  psqlPath: string | null;
}

/** What a scenario returns; the runner adds id, title, status and timing. */
export interface ScenarioOutput {
  figures: FigureResult[];
  runs: Array<Record<string, unknown>>;
  distributions?: Distribution[];
  sweep?: SweepPoint[];
  notes?: string[];
  /** Set when only part of the scenario could run (e.g. the floor ran, orderflow's reads did not). */
  partialReason?: string;
}

/** One benchmark scenario. Throws ScenarioUnavailableError when this build cannot run it. */
export interface Scenario {
  id: ScenarioId;
  title: string;
  run(ctx: BenchContext): Promise<ScenarioOutput>;
}
