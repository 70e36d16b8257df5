import { summarize, type Summary } from './stats';

/** The scenarios, in the order they run. */
export const SCENARIO_IDS = ['limit', 'alternatives', 'ingest', 'sweep', 'floor', 'reads'] as const;
/** One scenario id (`--only` takes a comma-separated list of them). */
export type ScenarioId = (typeof SCENARIO_IDS)[number];

/** What a figure is and how to read it. */
export interface FigureDef {
  /** Stable id, `<scenario>.<name>` (the targets refer to it). */
  id: string;
  label: string;
  /** Unit shown beside the value: "rows/s", "ms", "µs/event", "MB", "calls/s". */
  unit: string;
  /** Which direction is good (for the reader; ratios are plain quotients). */
  better: 'higher' | 'lower';
  /** Id of the figure this one is divided by in the report (the limit, the floor). */
  ratioTo?: string;
}

/** A figure with its per-run values summarised, plus the ratio once the report resolves it. */
export interface FigureResult extends FigureDef {
  summary: Summary;
  /** median / median of `ratioTo`; undefined when either is missing. */
  ratio?: number;
}

/** Outcome of a scenario. */
export type ScenarioStatus = 'ok' | 'unavailable' | 'failed';

/** A latency distribution: [percentile, ms] points, all runs' samples merged. */
export interface Distribution {
  label: string;
  points: Array<[number, number]>;
  count: number;
}

/** One point of the batch-window sweep. */
export interface SweepPoint {
  batchMaxMs: number;
  eventsPerSec: Summary;
  cpuMicrosPerEvent: Summary;
}

/** Everything one scenario produced. */
export interface ScenarioResult {
  id: ScenarioId;
  title: string;
  status: ScenarioStatus;
  /** Why it is unavailable or failed. */
  reason?: string;
  figures: FigureResult[];
  /** Raw per-run details (row counts, durations, CPU, errors), kept in results.json. */
  runs: Array<Record<string, unknown>>;
  distributions?: Distribution[];
  sweep?: SweepPoint[];
  /** Facts the reader needs (schema, row counts, extrapolations). */
  notes?: string[];
  elapsedMs: number;
}

/** Collects per-run values of figures and turns them into FigureResults. */
export class FigureCollector {
  private readonly values = new Map<string, number[]>();
  private readonly defs: FigureDef[] = [];

  /** Declares a figure (in report order). */
  define(def: FigureDef): void {
    if (this.defs.some((d) => d.id === def.id)) throw new Error(`figure ${def.id} defined twice`);
    this.defs.push(def);
    this.values.set(def.id, []);
  }

  /** Adds one run's value of figure `id`. */
  add(id: string, value: number): void {
    const list = this.values.get(id);
    if (!list) throw new Error(`figure ${id} is not defined`);
    list.push(value);
  }

  /** Values recorded so far for `id`. */
  get(id: string): readonly number[] {
    return this.values.get(id) ?? [];
  }

  /** Every defined figure that has at least one value, summarised. */
  results(): FigureResult[] {
    return this.defs.filter((d) => (this.values.get(d.id) ?? []).length > 0).map((d) => ({ ...d, summary: summarize(this.values.get(d.id)!) }));
  }
}

/** Fills in `ratio` of every figure whose `ratioTo` figure exists in `all`. */
export function resolveRatios(all: FigureResult[]): void {
  const byId = new Map(all.map((f) => [f.id, f]));
  for (const f of all) {
    if (!f.ratioTo) continue;
    const ref = byId.get(f.ratioTo);
    if (ref && Number.isFinite(ref.summary.median) && ref.summary.median !== 0 && Number.isFinite(f.summary.median)) {
      f.ratio = f.summary.median / ref.summary.median;
    }
  }
}

/** Machine and software the run was measured on. */
export interface BenchMeta {
  startedAt: string;
  finishedAt: string;
  elapsedMs: number;
  gitCommit: string;
  gitBranch: string;
  hostname: string;
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  node: string;
  postgres: string;
  postgresSettings: Record<string, string>;
  psql: string | null;
  runs: number;
  quick: boolean;
  only: ScenarioId[];
  ingestClient: string;
  /** Service entry the orderflow scenarios started. */
  serviceMain: string;
  /** 1-minute load average at start and at the end: other work on the machine skews absolute figures. */
  loadAverage: { start: number; end: number };
}

/** Verdict on one of the targets. */
export interface TargetResult {
  id: string;
  text: string;
  /** The measured figure(s) as text, or why there is none. */
  measured: string;
  /** true met, false not met, null not measured in this run. */
  met: boolean | null;
}

/** The whole results.json. */
export interface BenchResults {
  meta: BenchMeta;
  scenarios: ScenarioResult[];
  targets: TargetResult[];
}
