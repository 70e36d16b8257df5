import { runSaturation } from '../lib/ingest-load';
import { fmt, progress } from '../lib/progress';
import { FigureCollector, type SweepPoint } from '../lib/results';
import type { BenchContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { summarize } from '../lib/stats';
import { withFreshService } from './orderflow-ingest';

/** Streams of the sweep. */
const SWEEP_STREAMS = 4;

/**
 * Throughput against the batch window: the service restarted with each
 * INGEST_BATCH_MAX_MS and driven at saturation by 4 streams.
 */
export const sweepScenario: Scenario = {
  id: 'sweep',
  title: 'orderflow ingest: throughput vs batch window (INGEST_BATCH_MAX_MS, 4 streams)',
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const { plan, options } = ctx;
    const figures = new FigureCollector();
    const cpu = new Map<number, number[]>();
    for (const ms of plan.sweepBatchMaxMs) {
      figures.define({ id: `sweep.ms${ms}.events_per_sec`, label: `INGEST_BATCH_MAX_MS=${ms}: acked events/s`, unit: 'events/s', better: 'higher', ratioTo: 'limit.best_rows_per_sec' });
      cpu.set(ms, []);
    }
    const runs: Array<Record<string, unknown>> = [];
    let seed = 1_000;
    for (let run = 1; run <= options.runs; run++) {
      for (const ms of plan.sweepBatchMaxMs) {
        const r = await withFreshService(ctx, `sweep_${ms}`, { INGEST_BATCH_MAX_MS: String(ms) }, (server) =>
          runSaturation({ server, postmasterPid: ctx.postmasterPid, client: options.ingestClient, streams: SWEEP_STREAMS, eventsPerBatch: plan.eventsPerBatch, warmupMs: plan.sweepWarmupMs, windowMs: plan.sweepWindowMs, seed: seed++ }),
        );
        figures.add(`sweep.ms${ms}.events_per_sec`, r.eventsPerSec);
        cpu.get(ms)!.push(r.serverCpuMicros / r.ackedEvents);
        runs.push({ run, batchMaxMs: ms, ...r });
        progress('sweep', `run ${run}/${options.runs} INGEST_BATCH_MAX_MS=${ms}: ${fmt(r.eventsPerSec)} events/s, server ${fmt(r.serverCpuMicros / r.ackedEvents, 2)} µs/event`);
      }
    }
    const results = figures.results();
    const sweep: SweepPoint[] = plan.sweepBatchMaxMs.map((ms) => ({
      batchMaxMs: ms,
      eventsPerSec: results.find((f) => f.id === `sweep.ms${ms}.events_per_sec`)!.summary,
      cpuMicrosPerEvent: summarize(cpu.get(ms)!),
    }));
    return {
      figures: results,
      runs,
      sweep,
      notes: [`${SWEEP_STREAMS} streams at saturation, ${fmt(plan.sweepWarmupMs)} ms warm-up, ${fmt(plan.sweepWindowMs)} ms measured, a fresh service and database per point; other settings at their defaults.`],
    };
  },
};
