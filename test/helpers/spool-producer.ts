/**
 * A producer process for spool tests: `node spool-producer.js '<json>'` with
 * { address, sourceId, spoolPath, total, maxWindowEvents?, progressEvery?, fsync? }.
 * It opens a producer on its spool, continues above `lastAcceptedSeq` (so a
 * restart after SIGKILL resumes where the spool says), sends events up to
 * `total` with caller seqs, closes, and reports JSON lines on stdout:
 * {type:'open',…}, {type:'progress',…}, {type:'done',…}.
 */
import { createOrderFlowClient, type SpoolFsync } from '../../src/client';
import { mixedEvent } from './client-events';

interface Args {
  address: string;
  sourceId: string;
  spoolPath: string;
  total: number;
  maxWindowEvents?: number;
  progressEvery?: number;
  fsync?: SpoolFsync;
}

function report(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const client = createOrderFlowClient({ address: args.address });
  const producer = await client.openIngest({
    sourceId: args.sourceId,
    spool: { path: args.spoolPath, fsync: args.fsync ?? 'never' },
    maxWindowEvents: args.maxWindowEvents ?? 2_000,
    reconnect: { initialDelayMs: 20, maxDelayMs: 500 },
  });
  const opened = producer.stats();
  report({ type: 'open', pid: process.pid, lastAcceptedSeq: producer.lastAcceptedSeq, lastCommittedSeq: producer.lastCommittedSeq, recovered: opened.spool?.recoveredEvents ?? 0 });
  const every = args.progressEvery ?? 1_000;
  let failed = 0;
  for (let seq = producer.lastAcceptedSeq + 1n; seq <= BigInt(args.total); seq++) {
    const { acked } = await producer.send({ ...mixedEvent(Number(seq)), seq });
    acked.catch(() => failed++);
    if (seq % BigInt(every) === 0n) report({ type: 'progress', accepted: seq, lastCommittedSeq: producer.lastCommittedSeq });
  }
  await producer.close();
  const stats = producer.stats();
  report({ type: 'done', failed, stats: { ...stats, spool: undefined } });
  await client.close();
}

main().catch((err: unknown) => {
  report({ type: 'error', message: String(err) });
  process.exit(1);
});
