import type { ClientDuplexStream, Metadata } from '@grpc/grpc-js';
import type { IngestResponse__Output } from '../generated/orderflow/v1/IngestResponse';
import type { SpoolStats } from './spool';

/** Life cycle of a producer. FENCED and FAILED are final, like CLOSED. */
export type ProducerState = 'OPENING' | 'OPEN' | 'DRAINING' | 'CLOSED' | 'FENCED' | 'FAILED';

/** State of the producer's current stream. */
export type ConnectionState = 'CONNECTING' | 'READY' | 'BACKOFF' | 'DOWN';

/** An Ingest call whose requests are already-encoded `IngestRequest` bytes (see event-codec.ts). */
export type IngestCall = ClientDuplexStream<Buffer, IngestResponse__Output>;

/** What a producer needs from the client: a fresh Ingest call, and a way to say it is gone. */
export interface IngestTransport {
  openStream(metadata: Metadata | undefined): IngestCall;
  /** The producer ended (closed, fenced or failed); `sourceId` may be opened again. */
  release(producer: { readonly sourceId: string }): void;
}

/** A snapshot of a producer's figures (counts since it was opened). */
export interface ProducerStats {
  sourceId: string;
  state: ProducerState;
  connection: ConnectionState;
  /** Events taken by `send` (including replays settled at once as duplicates). */
  eventsAccepted: number;
  /** Events written to a stream for the first time. */
  eventsSent: number;
  /** Events written again on a new stream after a reconnect (or after a restart on a spool). */
  eventsResent: number;
  /** Events settled as stored or committed. */
  eventsAcked: number;
  eventsStored: number;
  /** Settled by a resume Welcome (see EventStatus). */
  eventsCommitted: number;
  /** Settled as duplicates (never sent). */
  eventsDuplicate: number;
  eventsRejected: number;
  /** Events failed by a fence, a fatal stream error or close/destroy. */
  eventsFailed: number;
  batchesSent: number;
  /** Resumptions: streams after the first that reached their Welcome. */
  reconnects: number;
  /** Streams opened after the first one, failed attempts included. */
  reconnectAttempts: number;
  /** Unacknowledged events held now. */
  windowEvents: number;
  windowMax: number;
  /** `send` calls waiting for room now. */
  waitingSends: number;
  /** `send` calls that had to wait for room. */
  sendWaits: number;
  /** Highest seq accepted. */
  lastSeq: bigint;
  /** The source's committed mark as last reported (Ack or Welcome). */
  lastCommittedSeq: bigint;
  /** Sums of the Ack counts the server reported on this producer's streams. */
  serverStored: number;
  serverRejected: number;
  serverDuplicates: number;
  /** The last stream error (reconnects happen after these). */
  lastStreamError: string | undefined;
  spool: SpoolStats | undefined;
}
