import { runOffered, runSaturation } from '../lib/ingest-load';
import { fmt, progress } from '../lib/progress';
import { FigureCollector, type SweepPoint } from '../lib/results';
import type { BenchContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { summarize } from '../lib/stats';
import { withFreshService } from './orderflow-ingest';

/** Streams of the sweep. */
const SWEEP_STREAMS = 4;
/** Offered load of the sweep's latency points, events/s (the 10,000 events/s latency target). */
const SWEEP_LATENCY_RATE = 10_000;

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
    for (const ms of plan.sweepLatencyBatchMaxMs) {
      const what = `INGEST_BATCH_MAX_MS=${ms}, ${fmt(SWEEP_LATENCY_RATE)} events/s offered`;
      figures.define({ id: `sweep.ms${ms}.p50_ms`, label: `${what}: receive→ack p50`, unit: 'ms', better: 'lower' });
      figures.define({ id: `sweep.ms${ms}.p99_ms`, label: `${what}: receive→ack p99`, unit: 'ms', better: 'lower' });
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
      for (const ms of plan.sweepLatencyBatchMaxMs) {
        const r = await withFreshService(ctx, `sweep_lat_${ms}`, { INGEST_BATCH_MAX_MS: String(ms) }, (server) =>
          runOffered({ server, client: options.ingestClient, streams: SWEEP_STREAMS, ratePerSec: SWEEP_LATENCY_RATE, eventsPerBatch: plan.eventsPerBatch, warmupMs: plan.offeredWarmupMs, windowMs: plan.offeredWindowMs, seed: seed++ }),
        );
        figures.add(`sweep.ms${ms}.p50_ms`, r.summary.p50Ms);
        figures.add(`sweep.ms${ms}.p99_ms`, r.summary.p99Ms);
        const { latency: _l, ...raw } = r;
        runs.push({ run, kind: 'latency', batchMaxMs: ms, ...raw });
        progress('sweep', `run ${run}/${options.runs} INGEST_BATCH_MAX_MS=${ms} at ${fmt(SWEEP_LATENCY_RATE)} events/s offered: p50 ${fmt(r.summary.p50Ms, 2)} ms, p99 ${fmt(r.summary.p99Ms, 2)} ms`);
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
      notes: [
        `${SWEEP_STREAMS} streams at saturation, ${fmt(plan.sweepWarmupMs)} ms warm-up, ${fmt(plan.sweepWindowMs)} ms measured, a fresh service and database per point; other settings at their defaults.`,
        `Latency points: ${SWEEP_STREAMS} streams, ${fmt(SWEEP_LATENCY_RATE)} events/s offered open loop (as in the ingest scenario), for INGEST_BATCH_MAX_MS ∈ {${plan.sweepLatencyBatchMaxMs.join(', ')}}.`,
      ],
    };
  },
};
