import type { SpanContext } from '@opentelemetry/api';
import { encodeCopyField } from '../db/copy/encoder';
import { StreamSequencer } from './sequencer';

/** Life cycle of one ingest stream inside the pipeline. */
export type IngestStreamState = 'OPENING' | 'OPEN' | 'FENCED' | 'CLOSED';

/** An Ack as the pipeline emits it (uint64 as decimal string). */
export interface AckOut {
  committed_seq: string;
  stored: number;
  rejected: number;
  duplicates: number;
}

/** A Reject as the pipeline emits it. */
export interface RejectOut {
  seq: string;
  code: number;
  reason: string;
}

/**
 * What the pipeline needs from a stream's transport (the gRPC call). Calls
 * arrive on the event loop, never concurrently.
 */
export interface StreamSink {
  sendReject(reject: RejectOut): void;
  sendAck(ack: AckOut): void;
  /** A newer stream for the source took over (here or on another instance): end with ABORTED. */
  fenced(): void;
  /** Stop reading client messages (backpressure). */
  pause(): void;
  /** Read client messages again. */
  resume(): void;
}

/**
 * The pipeline's state of one open Ingest stream: its source and epoch, its
 * sequencer, what is buffered but not yet acked, and counters since its last
 * ack.
 */
export class IngestStream {
  state: IngestStreamState = 'OPENING';
  /** Fencing epoch from the sources row, set by Hello. */
  epoch = '';
  /** Highest seq seen, committed or in flight. */
  sequencer = new StreamSequencer('0');
  /** Highest seq of this source known durable; what Acks report. */
  committedSeq = '0';
  /** Highest storable seq placed in a batch window so far (committed or in flight). */
  placedSeq = '0';
  /** Events received but not yet committed or dropped (rows and rejects). */
  buffered = 0;
  /** Duplicates counted since the last Ack. */
  unackedDuplicates = 0;
  /** True while reading is paused for backpressure. */
  paused = false;
  /** Receive time (ms, performance.now) of each message not yet fully acked, keyed by the highest seq seen after it. */
  readonly pendingMessages: { seq: string; receivedAtMs: number }[] = [];
  /** Settles when Hello processing finished (either way). */
  opening: Promise<unknown> = Promise.resolve();
  /** The source id as an encoded COPY field, written into every row. */
  readonly sourceIdField: Buffer;

  constructor(
    readonly sourceId: string,
    readonly sink: StreamSink,
    /** Span of the stream, linked from the flush spans that carry its events. */
    readonly spanContext: SpanContext | undefined,
  ) {
    this.sourceIdField = encodeCopyField(sourceId);
  }

  /** True while the pipeline may still talk to the transport. */
  get isLive(): boolean {
    return this.state === 'OPEN' || this.state === 'OPENING';
  }
}
