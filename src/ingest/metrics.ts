import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../telemetry/metrics';

/**
 * Ingest figures on the process registry. Updated per message or per flush,
 * never per event. Gauges move by inc/dec so that several pipelines in one
 * process (tests run two instances) add up instead of overwriting each other.
 */
export const ingestMetrics = {
  events: new Counter({
    name: 'orderflow_ingest_events_total',
    help: 'Ingest events by outcome: received (all), stored, rejected (quarantined), duplicate (dropped).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  openStreams: new Gauge({ name: 'orderflow_ingest_open_streams', help: 'Open Ingest streams.', registers: [registry] }),
  bufferedEvents: new Gauge({ name: 'orderflow_ingest_buffered_events', help: 'Events received but not yet committed (or dropped).', registers: [registry] }),
  backpressurePauses: new Counter({
    name: 'orderflow_ingest_backpressure_pauses_total',
    help: 'Times a stream stopped being read because buffered events reached a bound.',
    registers: [registry],
  }),
  fencedStreams: new Counter({ name: 'orderflow_ingest_fenced_streams_total', help: 'Streams ended with ABORTED because a newer stream took their source.', registers: [registry] }),
  batchRows: new Histogram({
    name: 'orderflow_ingest_batch_rows',
    help: 'Events per flushed batch window.',
    buckets: [1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000],
    registers: [registry],
  }),
  batchBytes: new Histogram({
    name: 'orderflow_ingest_batch_bytes',
    help: 'Encoded bytes per flushed batch window.',
    buckets: [1_024, 16_384, 131_072, 524_288, 1_048_576, 4_194_304, 8_388_608, 33_554_432],
    registers: [registry],
  }),
  flushDuration: new Histogram({
    name: 'orderflow_ingest_flush_duration_seconds',
    help: 'Duration of one flush transaction attempt, by outcome (committed, failed).',
    labelNames: ['outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
  flushFailures: new Counter({ name: 'orderflow_ingest_flush_failures_total', help: 'Flush attempts that rolled back and were retried.', registers: [registry] }),
  ackLatency: new Histogram({
    name: 'orderflow_ingest_ack_latency_seconds',
    help: 'Time from receiving a batch message to sending the Ack that covers all of it.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
};
