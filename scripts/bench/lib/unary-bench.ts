import * as grpc from '@grpc/grpc-js';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';
import type { BenchPlan } from './args';
import type { ChildServer } from './child';
import { runClosedLoop, runOpenLoop, sleep, type LoadResult } from './load';
import { processTreeCpuMicros } from './proc-stats';
import { fmt, progress } from './progress';
import type { FigureCollector } from './results';
import { LatencyRecorder } from './stats';
import { isUnimplemented, ScenarioUnavailableError } from './unavailable';

/** Deadline of one measured unary call, ms: a stuck call becomes an error instead of a hang. */
const CALL_DEADLINE_MS = 10_000;

/** Unary methods the read scenarios call. */
export type UnaryMethod = 'GetOrder' | 'ListFills' | 'GetPosition';

/**
 * The load generator's OrderFlow stub on 127.0.0.1:`port` (one HTTP/2
 * connection). Requests go through the generated serializers; responses stay
 * bytes (a call resolves with their size). Decoding a 100-fill ListFills page
 * costs a Node client ~1.5 ms, as much as the service spends answering it:
 * a decoding load generator saturated its own core at 1,000 calls/s and
 * measured its own queue. Close it with `.close()`.
 */
export class UnaryLoadClient {
  private readonly client: grpc.Client;
  private readonly definition = orderFlowServiceDefinition();

  constructor(port: number) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  }

  /** Calls `method` with `request`; resolves with the response's size in bytes, rejects with the grpc error. */
  call(method: UnaryMethod, request: object): Promise<number> {
    const { path, requestSerialize } = this.definition[method] as { path: string; requestSerialize: (req: object) => Buffer };
    return new Promise<number>((resolve, reject) => {
      this.client.makeUnaryRequest<object, Buffer>(path, requestSerialize, keepBytes, request, { deadline: Date.now() + CALL_DEADLINE_MS }, (err, res) =>
        err ? reject(err) : resolve(res!.length),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

function keepBytes(bytes: Buffer): Buffer {
  return bytes;
}

/**
 * Calls `method` once to see whether this build implements it. UNIMPLEMENTED
 * becomes ScenarioUnavailableError; other errors (NOT_FOUND…) mean it is there.
 */
export async function probeUnary(client: UnaryLoadClient, method: UnaryMethod, request: object): Promise<void> {
  try {
    await client.call(method, request);
  } catch (err) {
    if (isUnimplemented(err)) throw new ScenarioUnavailableError(`the ${method} RPC answers UNIMPLEMENTED on this build`);
  }
}

/** The figures of one unary workload, by suffix: `<prefix>.<suffix>`. */
export const UNARY_FIGURES = [
  { suffix: 'calls_per_sec', label: 'closed loop: calls/s', unit: 'calls/s', better: 'higher' },
  { suffix: 'cpu_us_per_call', label: 'server CPU per call (closed loop)', unit: 'µs/call', better: 'lower' },
  { suffix: 'pg_cpu_us_per_call', label: 'PostgreSQL CPU per call (closed loop)', unit: 'µs/call', better: 'lower' },
  { suffix: 'client_cpu_us_per_call', label: 'load-generator (client) CPU per call (closed loop)', unit: 'µs/call', better: 'lower' },
  { suffix: 'closed_p50_ms', label: 'closed loop p50', unit: 'ms', better: 'lower' },
  { suffix: 'closed_p99_ms', label: 'closed loop p99', unit: 'ms', better: 'lower' },
  { suffix: 'open_p50_ms', label: 'p50 at the offered rate', unit: 'ms', better: 'lower' },
  { suffix: 'open_p99_ms', label: 'p99 at the offered rate', unit: 'ms', better: 'lower' },
  { suffix: 'open_p999_ms', label: 'p99.9 at the offered rate', unit: 'ms', better: 'lower' },
  { suffix: 'open_cpu_us_per_call', label: 'server CPU per call at the offered rate', unit: 'µs/call', better: 'lower' },
  { suffix: 'open_failed_pct', label: 'calls failed or past the 10 s deadline at the offered rate', unit: '%', better: 'lower' },
] as const;

/** Declares a workload's figures; with `floorPrefix`, each figure's ratio is taken to the floor's figure of the same suffix. */
export function defineUnaryFigures(figures: FigureCollector, prefix: string, title: string, plan: BenchPlan, floorPrefix?: string): void {
  for (const f of UNARY_FIGURES) {
    const label = `${title}: ${f.label.replace('the offered rate', `${fmt(plan.readOpenRate)} calls/s`)}${f.suffix === 'calls_per_sec' || f.suffix.includes('closed') ? ` (${plan.readConcurrency} in flight)` : ''}`;
    figures.define({ id: `${prefix}.${f.suffix}`, label, unit: f.unit, better: f.better, ratioTo: floorPrefix && !['pg_cpu_us_per_call', 'client_cpu_us_per_call', 'open_failed_pct'].includes(f.suffix) ? `${floorPrefix}.${f.suffix}` : undefined });
  }
}

/** Longest wait for the service and PostgreSQL to go quiet before a workload, ms. */
const SETTLE_MAX_MS = 30_000;
/** Window over which quiet is judged, ms. */
const SETTLE_WINDOW_MS = 500;
/** Quiet: each of the service and the PostgreSQL tree used under this share of one core in a window. */
const QUIET_CPU_SHARE = 0.05;

/**
 * Waits (at most SETTLE_MAX_MS) until the service and PostgreSQL are quiet,
 * so a measurement does not pay for work left by the one before it: an
 * overloaded open loop leaves calls queued for a pool connection until their
 * deadline, and seeding leaves autovacuum running. Only our own processes
 * count (the machine may be shared). Resolves with the ms waited.
 */
export async function waitQuiet(server: ChildServer, postmasterPid: number | undefined): Promise<number> {
  const start = performance.now();
  const limitMicros = SETTLE_WINDOW_MS * 1_000 * QUIET_CPU_SHARE;
  const pgCpu = () => (postmasterPid === undefined ? 0 : processTreeCpuMicros(postmasterPid));
  while (performance.now() - start < SETTLE_MAX_MS) {
    const server0 = server.cpuMicros();
    const pg0 = pgCpu();
    await sleep(SETTLE_WINDOW_MS);
    if (server.cpuMicros() - server0 < limitMicros && pgCpu() - pg0 < limitMicros) break;
  }
  return performance.now() - start;
}

/** One closed-loop plus one open-loop measurement of a unary workload against `server`. */
export interface UnaryMeasurement {
  closed: LoadResult;
  closedServerCpuMicros: number;
  closedPgCpuMicros: number;
  closedClientCpuMicros: number;
  open: LoadResult;
  openServerCpuMicros: number;
}

/**
 * Measures `call` against `server`: closed loop (throughput, server and
 * PostgreSQL CPU per call), then open loop at the plan's offered rate (latency).
 * `postmasterPid` undefined: no database behind it (the floor).
 */
export async function measureUnary(server: ChildServer, postmasterPid: number | undefined, plan: BenchPlan, call: (i: number) => Promise<unknown>): Promise<UnaryMeasurement> {
  let server0 = 0;
  let pg0 = 0;
  let closedServerCpuMicros = 0;
  let closedPgCpuMicros = 0;
  let client0 = process.cpuUsage();
  let closedClientCpuMicros = 0;
  const pgCpu = () => (postmasterPid === undefined ? 0 : processTreeCpuMicros(postmasterPid));
  const closed = await runClosedLoop({
    concurrency: plan.readConcurrency,
    warmupMs: plan.readClosedWarmupMs,
    durationMs: plan.readClosedWindowMs,
    call: async (i) => void (await call(i)),
    onWindowStart: () => {
      server0 = server.cpuMicros();
      pg0 = pgCpu();
      client0 = process.cpuUsage();
    },
    onWindowEnd: () => {
      closedServerCpuMicros = server.cpuMicros() - server0;
      closedPgCpuMicros = pgCpu() - pg0;
      const client = process.cpuUsage(client0);
      closedClientCpuMicros = client.user + client.system;
    },
  });
  let openServerCpuMicros = 0;
  const open = await runOpenLoop({
    ratePerSec: plan.readOpenRate,
    warmupMs: plan.readOpenWarmupMs,
    durationMs: plan.readOpenWindowMs,
    call: async (i) => void (await call(i)),
    onWindowStart: () => (server0 = server.cpuMicros()),
    onWindowEnd: () => (openServerCpuMicros = server.cpuMicros() - server0),
  });
  // A closed loop where nothing succeeds means the RPC is broken. An open loop
  // may legitimately lose every call when the machine cannot keep up with the
  // offered rate: that is reported (failed %), not thrown.
  if (closed.completed === 0) throw new Error(`closed loop: no call succeeded (${closed.errors} errors; first: ${closed.firstError ?? 'none'})`);
  return { closed, closedServerCpuMicros, closedPgCpuMicros, closedClientCpuMicros, open, openServerCpuMicros };
}

/** Adds one measurement's values to the workload's figures and returns its raw record. */
export function addUnaryRun(figures: FigureCollector, prefix: string, m: UnaryMeasurement, withPg: boolean): Record<string, unknown> {
  const closedLat = m.closed.latency.summary();
  const openLat = m.open.latency.summary();
  figures.add(`${prefix}.calls_per_sec`, m.closed.ratePerSec);
  figures.add(`${prefix}.cpu_us_per_call`, m.closedServerCpuMicros / m.closed.completed);
  if (withPg) figures.add(`${prefix}.pg_cpu_us_per_call`, m.closedPgCpuMicros / m.closed.completed);
  figures.add(`${prefix}.client_cpu_us_per_call`, m.closedClientCpuMicros / m.closed.completed);
  figures.add(`${prefix}.closed_p50_ms`, closedLat.p50Ms);
  figures.add(`${prefix}.closed_p99_ms`, closedLat.p99Ms);
  figures.add(`${prefix}.open_p50_ms`, openLat.p50Ms);
  figures.add(`${prefix}.open_p99_ms`, openLat.p99Ms);
  figures.add(`${prefix}.open_p999_ms`, openLat.p999Ms);
  figures.add(`${prefix}.open_cpu_us_per_call`, m.open.completed > 0 ? m.openServerCpuMicros / m.open.completed : Number.NaN);
  const offered = m.open.completed + m.open.errors + m.open.timedOut;
  figures.add(`${prefix}.open_failed_pct`, offered > 0 ? ((m.open.errors + m.open.timedOut) * 100) / offered : Number.NaN);
  const strip = ({ distribution: _d, ...rest }: ReturnType<LatencyRecorder['summary']>) => rest;
  return {
    closed: { completed: m.closed.completed, errors: m.closed.errors, firstError: m.closed.firstError, callsPerSec: m.closed.ratePerSec, serverCpuMicros: m.closedServerCpuMicros, pgCpuMicros: m.closedPgCpuMicros, clientCpuMicros: m.closedClientCpuMicros, latency: strip(closedLat) },
    open: { completed: m.open.completed, errors: m.open.errors, firstError: m.open.firstError, timedOut: m.open.timedOut, achievedPerSec: m.open.ratePerSec, serverCpuMicros: m.openServerCpuMicros, latency: strip(openLat) },
  };
}

/** One progress line for a measurement. */
export function reportUnary(scope: string, what: string, run: number, runs: number, m: UnaryMeasurement): void {
  const open = m.open.latency.summary();
  progress(
    scope,
    `run ${run}/${runs} ${what}: ${fmt(m.closed.ratePerSec)} calls/s, server ${fmt(m.closedServerCpuMicros / m.closed.completed)} µs/call, client ${fmt(m.closedClientCpuMicros / m.closed.completed)} µs/call; at ${fmt(m.open.ratePerSec)}/s p50 ${fmt(open.p50Ms, 2)} ms, p99 ${fmt(open.p99Ms, 2)} ms${m.closed.errors + m.open.errors ? `; errors ${m.closed.errors + m.open.errors} (${m.closed.firstError ?? m.open.firstError})` : ''}`,
  );
}
