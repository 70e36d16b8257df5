import path from 'node:path';
import { INGEST_CLIENT_KINDS, type IngestClientKind } from './ingest-driver';
import { SCENARIO_IDS, type ScenarioId } from './results';

/** Command-line options of `npm run bench -- …`. */
export interface BenchOptions {
  /** Runs per figure (the median is reported). `--runs N`; default 3, or 1 with --quick. */
  runs: number;
  /** Small sizes and short windows: a smoke run. `--quick`. */
  quick: boolean;
  /** Scenarios to run. `--only limit,alternatives`; default all. */
  only: ScenarioId[];
  /** Where results go. `--out DIR`; default bench/results, or bench/results/tmp (git-ignored) with --quick. */
  outDir: string;
  /** Client the ingest scenarios drive. `--ingest-client pre-encoded|raw-stub|client`. */
  ingestClient: IngestClientKind;
  /** Compiled service entry the orderflow scenarios start. `--service FILE`; default dist/src/main.js. */
  serviceMain: string | undefined;
  help: boolean;
}

/** Usage text for --help and argument errors. */
export const USAGE = `Usage: npm run bench -- [--runs N] [--quick] [--only ${SCENARIO_IDS.join(',')}] [--out DIR] [--ingest-client pre-encoded|raw-stub|client] [--service FILE]

  --runs N          runs per figure; the median and the spread are reported (default 3; 1 with --quick)
  --quick           small data and short windows: a smoke run of a minute or two
  --only LIST       comma-separated scenarios (default: all)
  --out DIR         output directory (default bench/results; bench/results/tmp with --quick)
  --ingest-client   client the ingest scenarios drive (default pre-encoded: the generated stub's call fed requests encoded
                    ahead by the load generator; raw-stub: the stub serializes objects; client: the src/client producer)
  --service FILE    compiled service entry to start (default dist/src/main.js of this checkout)`;

/** Parses argv (without node and script). Throws an Error naming the bad argument. */
export function parseArgs(argv: readonly string[], cwd: string = process.cwd()): BenchOptions {
  let runs: number | undefined;
  let quick = false;
  let only: ScenarioId[] = [...SCENARIO_IDS];
  let outDir: string | undefined;
  let ingestClient: IngestClientKind = 'pre-encoded';
  let serviceMain: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--runs': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 50) throw new Error(`--runs must be a whole number from 1 to 50, got ${v}`);
        runs = Number(v);
        break;
      }
      case '--quick':
        quick = true;
        break;
      case '--only': {
        const ids = value().split(',').map((s) => s.trim()).filter(Boolean);
        const unknown = ids.filter((id) => !(SCENARIO_IDS as readonly string[]).includes(id));
        if (unknown.length || ids.length === 0) throw new Error(`--only takes ${SCENARIO_IDS.join(', ')}; unknown: ${unknown.join(', ') || '(empty)'}`);
        // Keep the canonical order whatever order was typed.
        only = SCENARIO_IDS.filter((id) => ids.includes(id));
        break;
      }
      case '--out':
        outDir = path.resolve(cwd, value());
        break;
      case '--ingest-client': {
        const v = value();
        if (!(INGEST_CLIENT_KINDS as readonly string[]).includes(v)) throw new Error(`--ingest-client must be one of ${INGEST_CLIENT_KINDS.join(', ')}, got ${v}`);
        ingestClient = v as IngestClientKind;
        break;
      }
      case '--service':
        serviceMain = path.resolve(cwd, value());
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  // A smoke run must not overwrite the committed results of a full run.
  outDir ??= path.resolve(cwd, quick ? 'bench/results/tmp' : 'bench/results');
  return { runs: runs ?? (quick ? 1 : 3), quick, only, outDir, ingestClient, serviceMain, help };
}

/** Sizes and durations of one benchmark run. */
export interface BenchPlan {
  /** Fill rows loaded by the limit scenario (psql \copy and pg-copy-streams). */
  limitRows: number;
  /** Rows per COPY statement of the bare pg-copy-streams load. */
  copyChunkRows: number;
  /** Rows inserted one INSERT at a time (rows/s is extrapolated). */
  perRowInsertRows: number;
  /** Rows inserted in 1,000-row multi-row INSERTs. */
  multiRowInsertRows: number;
  /** Rows per multi-row INSERT. */
  multiRowBatchRows: number;
  /** Events per EventBatch message. */
  eventsPerBatch: number;
  /** Warm-up and measured window of the ingest saturation runs, ms. */
  ingestWarmupMs: number;
  ingestWindowMs: number;
  /** Warm-up and measured window of the fixed-rate ingest runs, ms. */
  offeredWarmupMs: number;
  offeredWindowMs: number;
  /** Offered loads, events/s. */
  offeredRates: number[];
  /** Stream counts at saturation. */
  saturationStreams: number[];
  /** Batch windows of the sweep (INGEST_BATCH_MAX_MS), and its warm-up and window, ms. */
  sweepBatchMaxMs: number[];
  /** INGEST_BATCH_MAX_MS values whose receive→ack latency the sweep also measures (10,000 events/s offered). */
  sweepLatencyBatchMaxMs: number[];
  sweepWarmupMs: number;
  sweepWindowMs: number;
  /** Closed-loop read runs: concurrency, warm-up and window, ms. */
  readConcurrency: number;
  readClosedWarmupMs: number;
  readClosedWindowMs: number;
  /** Open-loop read runs: offered rate (calls/s), warm-up and window, ms. */
  readOpenRate: number;
  readOpenWarmupMs: number;
  readOpenWindowMs: number;
  /** Orders seeded for the read scenarios. */
  readSeedOrders: number;
}

/** The plan for default or --quick runs. */
export function planFor(options: Pick<BenchOptions, 'quick'>): BenchPlan {
  const common = { copyChunkRows: 100_000, multiRowBatchRows: 1_000, eventsPerBatch: 100, offeredRates: [10_000, 50_000], saturationStreams: [1, 4, 16], sweepBatchMaxMs: [0, 1, 2, 5, 10, 20], sweepLatencyBatchMaxMs: [0, 1, 5], readConcurrency: 16, readOpenRate: 1_000 };
  if (options.quick) {
    return {
      ...common,
      limitRows: 50_000,
      perRowInsertRows: 500,
      multiRowInsertRows: 20_000,
      ingestWarmupMs: 500,
      ingestWindowMs: 2_000,
      offeredWarmupMs: 500,
      offeredWindowMs: 2_000,
      sweepWarmupMs: 500,
      sweepWindowMs: 1_500,
      readClosedWarmupMs: 300,
      readClosedWindowMs: 1_500,
      readOpenWarmupMs: 300,
      readOpenWindowMs: 2_000,
      readSeedOrders: 5_000,
    };
  }
  return {
    ...common,
    limitRows: 1_000_000,
    perRowInsertRows: 5_000,
    multiRowInsertRows: 200_000,
    ingestWarmupMs: 2_000,
    ingestWindowMs: 8_000,
    offeredWarmupMs: 1_000,
    offeredWindowMs: 8_000,
    sweepWarmupMs: 1_500,
    sweepWindowMs: 5_000,
    readClosedWarmupMs: 1_000,
    readClosedWindowMs: 4_000,
    readOpenWarmupMs: 1_000,
    readOpenWindowMs: 8_000,
    readSeedOrders: 100_000,
  };
}
