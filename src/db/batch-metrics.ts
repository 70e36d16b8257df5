import { Counter, Histogram } from 'prom-client';
import { registry } from '../telemetry/metrics';

/** How a chunk ended, the `outcome` label of orderflow_batch_chunks_total. */
export type ChunkOutcomeLabel = 'ok' | 'error' | 'cancelled';

/** Rows of chunks that succeeded, by operation name. */
export const batchRowsTotal = new Counter({
  name: 'orderflow_batch_rows_total',
  help: 'Input rows of batch chunks that succeeded, by operation.',
  labelNames: ['operation'] as const,
  registers: [registry],
});

/** Chunks finished, by operation and outcome (ok, error, cancelled). */
export const batchChunksTotal = new Counter({
  name: 'orderflow_batch_chunks_total',
  help: 'Batch chunks finished, by operation and outcome (ok, error, cancelled).',
  labelNames: ['operation', 'outcome'] as const,
  registers: [registry],
});

/** Wall time of one chunk, seconds: for a single-statement chunk, also its lock hold time. */
export const batchChunkDurationSeconds = new Histogram({
  name: 'orderflow_batch_chunk_duration_seconds',
  help: 'Duration of one batch chunk (one statement or one short transaction), seconds.',
  labelNames: ['operation'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});
