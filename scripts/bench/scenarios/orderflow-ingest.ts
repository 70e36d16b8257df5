import type { IngestClientKind } from '../lib/ingest-driver';
import { startService, type ChildServer } from '../lib/child';
import { runOffered, runSaturation, type SaturationResult } from '../lib/ingest-load';
import { fmt, progress } from '../lib/progress';
import { FigureCollector, type Distribution } from '../lib/results';
import type { BenchContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { LatencyRecorder } from '../lib/stats';
import { LIMIT_FIGURE_ID } from './limit';

/** What each load-generator driver is, for the report's notes. */
export const INGEST_CLIENT_DESCRIPTIONS: Record<IngestClientKind, string> = {
  'pre-encoded': "the generated stub's call fed IngestRequests encoded ahead by the load generator",
  'raw-stub': 'the generated proto-loader stub serializing plain objects',
  client: 'the src/client producer',
};

/** Streams of the fixed-rate runs (the issue's targets are for 4 streams). */
export const OFFERED_STREAMS = 4;

/**
 * Runs `fn` against a fresh orderflow process on a fresh database (the service
 * applies its own migrations at start), then stops both.
 */
export async function withFreshService<T>(ctx: BenchContext, label: string, env: Record<string, string>, fn: (server: ChildServer) => Promise<T>): Promise<T> {
  const db = await ctx.cluster.createDatabase(label, false);
  try {
    const server = await startService(db.url, env, ctx.options.serviceMain);
    try {
      return await fn(server);
    } finally {
      await server.stop();
    }
  } finally {
    await db.drop();
  }
}

/** Records a saturation run's figures under `prefix` (e.g. ingest.s4). */
export function addSaturationRun(figures: FigureCollector, prefix: string, r: SaturationResult): void {
  figures.add(`${prefix}.events_per_sec`, r.eventsPerSec);
  figures.add(`${prefix}.cpu_us_per_event`, r.serverCpuMicros / r.ackedEvents);
  figures.add(`${prefix}.pg_cpu_us_per_event`, r.pgCpuMicros / r.ackedEvents);
  figures.add(`${prefix}.client_cpu_us_per_event`, r.clientCpuMicros / r.ackedEvents);
  figures.add(`${prefix}.peak_rss_mb`, r.peakRssBytes / 2 ** 20);
}

/** Declares the saturation figures of `streams` streams under `prefix`. */
export function defineSaturationFigures(figures: FigureCollector, prefix: string, what: string): void {
  figures.define({ id: `${prefix}.events_per_sec`, label: `${what}: acked events/s`, unit: 'events/s', better: 'higher', ratioTo: LIMIT_FIGURE_ID });
  figures.define({ id: `${prefix}.cpu_us_per_event`, label: `${what}: server CPU per event`, unit: 'µs/event', better: 'lower' });
  figures.define({ id: `${prefix}.pg_cpu_us_per_event`, label: `${what}: PostgreSQL CPU per event`, unit: 'µs/event', better: 'lower' });
  figures.define({ id: `${prefix}.client_cpu_us_per_event`, label: `${what}: load-generator CPU per event`, unit: 'µs/event', better: 'lower' });
  figures.define({ id: `${prefix}.peak_rss_mb`, label: `${what}: server peak RSS`, unit: 'MB', better: 'lower' });
}

/**
 * orderflow's Ingest RPC driven through the generated client: 1, 4 and 16
 * streams at saturation, and 4 streams at fixed offered loads for the
 * receive→ack latency. Events are the limit's fill rows, ~100 per message.
 */
export const ingestScenario: Scenario = {
  id: 'ingest',
  title: 'orderflow ingest: saturation and receive→ack latency',
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const { plan, options } = ctx;
    const figures = new FigureCollector();
    for (const s of plan.saturationStreams) defineSaturationFigures(figures, `ingest.s${s}`, `${s} stream${s === 1 ? '' : 's'} at saturation`);
    for (const rate of plan.offeredRates) {
      const what = `${fmt(rate)} events/s offered, ${OFFERED_STREAMS} streams`;
      figures.define({ id: `ingest.r${rate}.p50_ms`, label: `${what}: receive→ack p50`, unit: 'ms', better: 'lower' });
      figures.define({ id: `ingest.r${rate}.p99_ms`, label: `${what}: receive→ack p99`, unit: 'ms', better: 'lower' });
      figures.define({ id: `ingest.r${rate}.p999_ms`, label: `${what}: receive→ack p99.9`, unit: 'ms', better: 'lower' });
      figures.define({ id: `ingest.r${rate}.events_per_sec`, label: `${what}: acked events/s`, unit: 'events/s', better: 'higher' });
      figures.define({ id: `ingest.r${rate}.cpu_us_per_event`, label: `${what}: server CPU per event`, unit: 'µs/event', better: 'lower' });
    }
    const runs: Array<Record<string, unknown>> = [];
    const merged = new Map(plan.offeredRates.map((r) => [r, new LatencyRecorder()]));
    let seed = 1;
    for (let run = 1; run <= options.runs; run++) {
      for (const streams of plan.saturationStreams) {
        const r = await withFreshService(ctx, `ingest_s${streams}`, {}, (server) =>
          runSaturation({ server, postmasterPid: ctx.postmasterPid, client: options.ingestClient, streams, eventsPerBatch: plan.eventsPerBatch, warmupMs: plan.ingestWarmupMs, windowMs: plan.ingestWindowMs, seed: seed++ }),
        );
        addSaturationRun(figures, `ingest.s${streams}`, r);
        runs.push({ run, kind: 'saturation', ...r });
        progress('ingest', `run ${run}/${options.runs} ${streams} stream(s): ${fmt(r.eventsPerSec)} events/s, server ${fmt(r.serverCpuMicros / r.ackedEvents, 2)} µs/event, PostgreSQL ${fmt(r.pgCpuMicros / r.ackedEvents, 2)} µs/event, peak RSS ${fmt(r.peakRssBytes / 2 ** 20)} MB${r.rejects ? `, ${r.rejects} rejects` : ''}`);
      }
      for (const rate of plan.offeredRates) {
        const r = await withFreshService(ctx, `ingest_r${rate}`, {}, (server) =>
          runOffered({ server, client: options.ingestClient, streams: OFFERED_STREAMS, ratePerSec: rate, eventsPerBatch: plan.eventsPerBatch, warmupMs: plan.offeredWarmupMs, windowMs: plan.offeredWindowMs, seed: seed++ }),
        );
        // Nothing acked in the window leaves the percentiles NaN ("n/a" in the report) rather than failing the scenario.
        figures.add(`ingest.r${rate}.p50_ms`, r.summary.p50Ms);
        figures.add(`ingest.r${rate}.p99_ms`, r.summary.p99Ms);
        figures.add(`ingest.r${rate}.p999_ms`, r.summary.p999Ms);
        figures.add(`ingest.r${rate}.events_per_sec`, r.achievedPerSec);
        figures.add(`ingest.r${rate}.cpu_us_per_event`, r.serverCpuMicros / (r.batches * plan.eventsPerBatch));
        merged.get(rate)!.merge(r.latency);
        const { latency: _l, ...raw } = r;
        runs.push({ run, kind: 'offered', ...raw });
        progress('ingest', `run ${run}/${options.runs} ${fmt(rate)} events/s offered: acked ${fmt(r.achievedPerSec)}/s, p50 ${fmt(r.summary.p50Ms, 2)} ms, p99 ${fmt(r.summary.p99Ms, 2)} ms, p99.9 ${fmt(r.summary.p999Ms, 2)} ms${r.timedOutBatches ? `, ${r.timedOutBatches} batches never acked` : ''}`);
      }
    }
    const distributions: Distribution[] = plan.offeredRates.map((rate) => {
      const s = merged.get(rate)!.summary();
      return { label: `${fmt(rate)} events/s offered`, points: s.distribution, count: s.count * plan.eventsPerBatch };
    });
    return {
      figures: figures.results(),
      runs,
      distributions,
      notes: [
        `Client: ${options.ingestClient} (${INGEST_CLIENT_DESCRIPTIONS[options.ingestClient]}), one connection per stream, ${plan.eventsPerBatch} fill events per EventBatch; at saturation each stream keeps at most 20,000 events unacknowledged and honours write backpressure.`,
        `Saturation: ${fmt(plan.ingestWarmupMs)} ms warm-up, then acked events counted over ${fmt(plan.ingestWindowMs)} ms. CPU from /proc (service process; PostgreSQL = postmaster and all its children; load generator = this process). Peak RSS = VmHWM of the service.`,
        `Latency: open loop, batches scheduled at fixed intended times round-robin over ${OFFERED_STREAMS} streams; each batch's latency runs from its intended send time to the Ack covering its last event. ${fmt(plan.offeredWarmupMs)} ms warm-up, ${fmt(plan.offeredWindowMs)} ms measured.`,
        'A fresh database and a fresh service process (default settings) for every measurement.',
      ],
    };
  },
};
