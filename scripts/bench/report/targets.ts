import type { FigureResult, TargetResult } from '../lib/results';

/** Figure ids the targets read (kept here so scenarios and targets cannot drift apart silently). */
export const TARGET_FIGURES = {
  limit: 'limit.best_rows_per_sec',
  ingest4: 'ingest.s4.events_per_sec',
  ingest4Cpu: 'ingest.s4.cpu_us_per_event',
  ingest16Rss: 'ingest.s16.peak_rss_mb',
  lat10kP50: 'ingest.r10000.p50_ms',
  lat10kP99: 'ingest.r10000.p99_ms',
  lat50kP99: 'ingest.r50000.p99_ms',
  hitCpu: 'reads.get_order_hit.cpu_us_per_call',
  floorCpu: 'floor.cpu_us_per_call',
  hitOpenP99: 'reads.get_order_hit.open_p99_ms',
  floorOpenP99: 'floor.open_p99_ms',
  perRow: 'alternatives.per_row_rows_per_sec',
  multiRow: 'alternatives.multi_row_rows_per_sec',
} as const;

type Lookup = (id: string) => number | undefined;

interface TargetDef {
  id: string;
  text: string;
  /** Figure ids the verdict needs; missing any → not measured. */
  needs: string[];
  evaluate(get: (id: string) => number): { measured: string; met: boolean };
}

const n0 = (v: number) => v.toLocaleString('en-US', { maximumFractionDigits: 0 });
const n2 = (v: number) => v.toLocaleString('en-US', { maximumFractionDigits: 2 });
const F = TARGET_FIGURES;

/** The targets (#9), in its order. Thresholds are the numbers. */
export const TARGETS: readonly TargetDef[] = [
  {
    id: 'ingest_vs_limit',
    text: 'Ingest (4 streams) ≥ 85% of the same-schema COPY limit',
    needs: [F.ingest4, F.limit],
    evaluate: (get) => {
      const ratio = get(F.ingest4) / get(F.limit);
      return { measured: `${n0(get(F.ingest4))} events/s = ${n2(ratio * 100)}% of ${n0(get(F.limit))} rows/s`, met: ratio >= 0.85 };
    },
  },
  {
    id: 'ingest_absolute',
    text: 'Ingest (4 streams) ≥ 150,000 events/s',
    needs: [F.ingest4],
    evaluate: (get) => ({ measured: `${n0(get(F.ingest4))} events/s`, met: get(F.ingest4) >= 150_000 }),
  },
  {
    id: 'latency_10k_p50',
    text: 'Receive→ack p50 ≤ 5 ms at 10,000 events/s offered',
    needs: [F.lat10kP50],
    evaluate: (get) => ({ measured: `${n2(get(F.lat10kP50))} ms`, met: get(F.lat10kP50) <= 5 }),
  },
  {
    id: 'latency_10k_p99',
    text: 'Receive→ack p99 ≤ 20 ms at 10,000 events/s offered',
    needs: [F.lat10kP99],
    evaluate: (get) => ({ measured: `${n2(get(F.lat10kP99))} ms`, met: get(F.lat10kP99) <= 20 }),
  },
  {
    id: 'latency_50k_p99',
    text: 'Receive→ack p99 ≤ 50 ms at 50,000 events/s offered',
    needs: [F.lat50kP99],
    evaluate: (get) => ({ measured: `${n2(get(F.lat50kP99))} ms`, met: get(F.lat50kP99) <= 50 }),
  },
  {
    id: 'cpu_per_event',
    text: 'Server CPU ≤ 3 µs per event at saturation (4 streams)',
    needs: [F.ingest4Cpu],
    evaluate: (get) => ({ measured: `${n2(get(F.ingest4Cpu))} µs/event`, met: get(F.ingest4Cpu) <= 3 }),
  },
  {
    id: 'peak_rss',
    text: 'Peak RSS ≤ 300 MB with 16 streams at saturation',
    needs: [F.ingest16Rss],
    evaluate: (get) => ({ measured: `${n0(get(F.ingest16Rss))} MB`, met: get(F.ingest16Rss) <= 300 }),
  },
  {
    id: 'get_order_cpu',
    text: 'GetOrder cache hit: server CPU per call ≤ 1.3× the trivial handler',
    needs: [F.hitCpu, F.floorCpu],
    evaluate: (get) => {
      const ratio = get(F.hitCpu) / get(F.floorCpu);
      return { measured: `${n0(get(F.hitCpu))} vs ${n0(get(F.floorCpu))} µs/call = ${n2(ratio)}×`, met: ratio <= 1.3 };
    },
  },
  {
    id: 'get_order_p99',
    text: 'GetOrder cache hit: p99 at 1,000 calls/s ≤ 1.25× the trivial handler',
    needs: [F.hitOpenP99, F.floorOpenP99],
    evaluate: (get) => {
      const ratio = get(F.hitOpenP99) / get(F.floorOpenP99);
      return { measured: `${n2(get(F.hitOpenP99))} vs ${n2(get(F.floorOpenP99))} ms = ${n2(ratio)}×`, met: ratio <= 1.25 };
    },
  },
  {
    id: 'vs_per_row_insert',
    text: '≥ 50× the one-INSERT-per-row alternative',
    needs: [F.ingest4, F.perRow],
    evaluate: (get) => {
      const ratio = get(F.ingest4) / get(F.perRow);
      return { measured: `${n0(ratio)}× (${n0(get(F.ingest4))} vs ${n0(get(F.perRow))} rows/s)`, met: ratio >= 50 };
    },
  },
  {
    id: 'vs_multi_row_insert',
    text: '≥ 4× the 1,000-row multi-row INSERT',
    needs: [F.ingest4, F.multiRow],
    evaluate: (get) => {
      const ratio = get(F.ingest4) / get(F.multiRow);
      return { measured: `${n2(ratio)}× (${n0(get(F.ingest4))} vs ${n0(get(F.multiRow))} rows/s)`, met: ratio >= 4 };
    },
  },
];

/** Evaluates every target against the figures' medians; a target whose figures are missing is `met: null`. */
export function evaluateTargets(figures: readonly FigureResult[], unavailable: ReadonlyMap<string, string> = new Map()): TargetResult[] {
  const byId = new Map(figures.map((f) => [f.id, f.summary.median]));
  const lookup: Lookup = (id) => {
    const v = byId.get(id);
    return v !== undefined && Number.isFinite(v) ? v : undefined;
  };
  return TARGETS.map((t) => {
    const missing = t.needs.filter((id) => lookup(id) === undefined);
    if (missing.length > 0) {
      const scenario = missing[0]!.split('.')[0]!;
      const why = unavailable.get(scenario);
      return { id: t.id, text: t.text, measured: why ? `not measured: ${why}` : `not measured (${missing.join(', ')} missing)`, met: null };
    }
    const verdict = t.evaluate((id) => lookup(id)!);
    return { id: t.id, text: t.text, measured: verdict.measured, met: verdict.met };
  });
}
