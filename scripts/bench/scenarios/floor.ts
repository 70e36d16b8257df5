import { startFloorServer } from '../lib/child';
import { FigureCollector, type Distribution } from '../lib/results';
import type { BenchContext, Scenario, ScenarioOutput } from '../lib/scenario';
import { LatencyRecorder } from '../lib/stats';
import { addUnaryRun, defineUnaryFigures, measureUnary, UnaryLoadClient, reportUnary } from '../lib/unary-bench';

/** Figure prefix of the floor; the read figures take their ratios to `floor.<suffix>`. */
export const FLOOR_PREFIX = 'floor';

/**
 * The floor of every read: a trivial grpc-js server in its own process whose
 * GetOrder returns a constant Order. Whatever orderflow's read path costs
 * beyond this is its own doing; below it nothing unary can go.
 */
export const floorScenario: Scenario = {
  id: 'floor',
  title: 'Floor: trivial grpc-js GetOrder returning a constant Order',
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const { plan, options } = ctx;
    const figures = new FigureCollector();
    defineUnaryFigures(figures, FLOOR_PREFIX, 'trivial GetOrder', plan);
    const runs: Array<Record<string, unknown>> = [];
    const merged = new LatencyRecorder();
    for (let run = 1; run <= options.runs; run++) {
      const server = await startFloorServer();
      const client = new UnaryLoadClient(server.port);
      try {
        const m = await measureUnary(server, undefined, plan, () => client.call('GetOrder', { order_id: 'SEED-O000000042' }));
        runs.push({ run, ...addUnaryRun(figures, FLOOR_PREFIX, m, false) });
        merged.merge(m.open.latency);
        reportUnary('floor', 'trivial GetOrder', run, options.runs, m);
      } finally {
        client.close();
        await server.stop();
      }
    }
    const s = merged.summary();
    const distributions: Distribution[] = [{ label: 'floor: trivial GetOrder', points: s.distribution, count: s.count }];
    return {
      figures: figures.results(),
      runs,
      distributions,
      notes: [`Closed loop: ${plan.readConcurrency} calls in flight on one connection. Open loop: ${plan.readOpenRate.toLocaleString('en-US')} calls/s offered, latency from each call's intended send time. A fresh server process per run.`],
    };
  },
};
