import * as grpc from '@grpc/grpc-js';
import type { IngestRequest } from '../../../src/generated/orderflow/v1/IngestRequest';
import type { IngestResponse__Output } from '../../../src/generated/orderflow/v1/IngestResponse';
import type { OrderFlowClient } from '../../../src/generated/orderflow/v1/OrderFlow';
import { loadOrderflowProto } from '../../../src/rpc/proto';
import { ClientLibraryDriver } from './client-driver';
import { isUnimplemented, ScenarioUnavailableError } from './unavailable';

/**
 * The seam between the ingest scenarios and the client they drive: the raw
 * generated stub (proto-loader) or the client library in src/client
 * (lib/client-driver.ts), selected with `--ingest-client raw-stub|client`, so
 * both can be measured side by side.
 */

/** One event as the Ingest RPC takes it (proto `Event`, seq as a decimal string). */
export interface IngestEvent {
  seq: string;
  fill?: Record<string, string | number>;
  order?: Record<string, string | number>;
}

/** One open Ingest stream, after Welcome. */
export interface IngestStream {
  readonly sourceId: string;
  /** Welcome.last_committed_seq. */
  readonly lastCommittedSeq: bigint;
  /** Sends one EventBatch. False when the transport wants the writer to wait for `waitDrain()`. */
  sendBatch(events: IngestEvent[]): boolean;
  /** Sends one IngestRequest already encoded (BatchFactory.nextEncoded); only drivers with `sendsEncoded`. */
  sendEncoded?(request: Buffer): boolean;
  /** Resolves when the transport accepts writes again. */
  waitDrain(): Promise<void>;
  /** Registers the Ack listener (committed seq, events stored since the previous Ack). */
  onAck(listener: (committedSeq: bigint, stored: number) => void): void;
  /** Number of Reject messages received. */
  readonly rejects: number;
  /** The stream's error, once it failed (undefined while healthy). */
  readonly error: Error | undefined;
  /** Half-closes and waits until the server ends the stream (at most `timeoutMs`). */
  close(timeoutMs?: number): Promise<void>;
  /** Cancels the call at once. */
  cancel(): void;
}

/** Opens Ingest streams against one server. */
export interface IngestDriver {
  /** Name shown in the report ("raw-stub"). */
  readonly name: string;
  /** True when its streams take pre-encoded requests (`sendEncoded`). */
  readonly sendsEncoded: boolean;
  /** Opens a stream for `sourceId` and waits for Welcome. Throws ScenarioUnavailableError on UNIMPLEMENTED. */
  open(sourceId: string): Promise<IngestStream>;
  /** Closes every channel. */
  close(): void;
}

/**
 * Ingest client implementations the benchmark knows. `pre-encoded`: the
 * generated stub's connection and call, fed requests the load generator
 * encoded itself (a few bytes patched per event), so the client's CPU stays
 * small beside the server's on a shared 2-core machine; `raw-stub`: the stub
 * serializes plain objects (proto-loader), as a user's code would.
 */
export type IngestClientKind = 'pre-encoded' | 'raw-stub' | 'client';

/** Every IngestClientKind, for argument parsing. */
export const INGEST_CLIENT_KINDS: readonly IngestClientKind[] = ['pre-encoded', 'raw-stub', 'client'];

/** Options of createIngestDriver. */
export interface IngestDriverOptions {
  /** How long to wait for Welcome after Hello, ms. Default 10,000. */
  welcomeTimeoutMs?: number;
}

/** Creates the driver for `kind` against 127.0.0.1:`port`. */
export function createIngestDriver(kind: IngestClientKind, port: number, options: IngestDriverOptions = {}): IngestDriver {
  switch (kind) {
    case 'pre-encoded':
      return new RawStubDriver(port, options.welcomeTimeoutMs ?? DEFAULT_WELCOME_TIMEOUT_MS, true);
    case 'raw-stub':
      return new RawStubDriver(port, options.welcomeTimeoutMs ?? DEFAULT_WELCOME_TIMEOUT_MS, false);
    case 'client':
      return new ClientLibraryDriver(port, options.welcomeTimeoutMs ?? DEFAULT_WELCOME_TIMEOUT_MS);
  }
}

/** Default wait for Welcome after Hello, ms. */
const DEFAULT_WELCOME_TIMEOUT_MS = 10_000;

class RawStubDriver implements IngestDriver {
  readonly name: IngestClientKind;
  private readonly clients: OrderFlowClient[] = [];

  constructor(
    private readonly port: number,
    private readonly welcomeTimeoutMs: number,
    readonly sendsEncoded: boolean,
  ) {
    this.name = sendsEncoded ? 'pre-encoded' : 'raw-stub';
  }

  async open(sourceId: string): Promise<IngestStream> {
    const Client = this.sendsEncoded ? passThroughClient() : loadOrderflowProto().proto.orderflow.v1.OrderFlow;
    // One connection per stream, as separate adapters would have: a local
    // subchannel pool stops grpc-js from multiplexing every stream on one socket.
    const client = new Client(`127.0.0.1:${this.port}`, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_send_message_length': 16 * 1024 * 1024,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
    });
    this.clients.push(client);
    const call = client.Ingest();
    const stream = new RawStubStream(sourceId, call);
    call.write({ hello: { source_id: sourceId } } satisfies IngestRequest);
    try {
      await stream.welcome(this.welcomeTimeoutMs);
    } catch (err) {
      stream.cancel();
      throw err;
    }
    return stream;
  }

  close(): void {
    for (const c of this.clients) c.close();
    this.clients.length = 0;
  }
}

class RawStubStream implements IngestStream {
  lastCommittedSeq = 0n;
  rejects = 0;
  error: Error | undefined;
  private ackListener: ((committedSeq: bigint, stored: number) => void) | undefined;
  private welcomed: ((err?: Error) => void) | undefined;
  private readonly ended: Promise<void>;

  constructor(
    readonly sourceId: string,
    private readonly call: grpc.ClientDuplexStream<IngestRequest, IngestResponse__Output>,
  ) {
    call.on('data', (msg: IngestResponse__Output) => {
      if (msg.ack) this.ackListener?.(BigInt(msg.ack.committed_seq), msg.ack.stored);
      else if (msg.reject) this.rejects++;
      else if (msg.welcome) {
        this.lastCommittedSeq = BigInt(msg.welcome.last_committed_seq);
        this.welcomed?.();
      }
    });
    this.ended = new Promise<void>((resolve) => {
      call.on('error', (err: grpc.ServiceError) => {
        this.error = err;
        this.welcomed?.(err);
        resolve();
      });
      call.on('end', () => resolve());
      call.on('close', () => resolve());
    });
  }

  welcome(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // A stub that destroys the call with an error never sends its status
      // (grpc-js skips _final on a destroyed stream): the client sees nothing
      // at all. The foundation's UNIMPLEMENTED Ingest does exactly that, so
      // silence after Hello is reported as "not available" with the reason.
      const timer = setTimeout(
        () => reject(new ScenarioUnavailableError(`the Ingest RPC sent no Welcome within ${timeoutMs} ms after Hello (not implemented on this build, or it hangs)`)),
        timeoutMs,
      );
      this.welcomed = (err) => {
        clearTimeout(timer);
        this.welcomed = undefined;
        if (!err) return resolve();
        if (isUnimplemented(err)) reject(new ScenarioUnavailableError('the Ingest RPC answers UNIMPLEMENTED on this build'));
        else reject(err);
      };
    });
  }

  sendBatch(events: IngestEvent[]): boolean {
    return this.call.write({ batch: { events } } as IngestRequest);
  }

  sendEncoded(request: Buffer): boolean {
    // passThroughClient's serializer hands a Buffer to the wire as it is.
    return this.call.write(request as unknown as IngestRequest);
  }

  waitDrain(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    // Also settle when the stream ends, or a writer waiting here would hang for good.
    return Promise.race([
      new Promise<void>((resolve) => this.call.once('drain', resolve)),
      this.ended.then(() => {
        throw this.error ?? new Error(`Ingest stream of ${this.sourceId} ended.`);
      }),
    ]);
  }

  onAck(listener: (committedSeq: bigint, stored: number) => void): void {
    this.ackListener = listener;
  }

  async close(timeoutMs = 30_000): Promise<void> {
    this.call.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    if (!this.error) this.call.cancel();
  }

  cancel(): void {
    this.call.cancel();
  }
}

let passThrough: typeof grpc.Client | undefined;

/**
 * The generated OrderFlow client with one change: an Ingest request that is
 * already a Buffer goes to the wire as it is (objects are still serialized).
 */
function passThroughClient(): new (address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions) => OrderFlowClient {
  if (!passThrough) {
    const service = loadOrderflowProto().proto.orderflow.v1.OrderFlow.service;
    const ingest = service.Ingest;
    passThrough = grpc.makeGenericClientConstructor(
      { ...service, Ingest: { ...ingest, requestSerialize: (value: IngestRequest | Buffer) => (Buffer.isBuffer(value) ? value : ingest.requestSerialize(value)) } },
      'OrderFlow',
    );
  }
  return passThrough as unknown as new (address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions) => OrderFlowClient;
}
