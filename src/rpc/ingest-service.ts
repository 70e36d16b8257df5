import { status as GrpcStatus, type ServerDuplexStream } from '@grpc/grpc-js';
import { SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { InvalidArgumentError, OrderflowError, ShuttingDownError, FencedError } from '../errors';
import type { IngestResponse } from '../generated/orderflow/v1/IngestResponse';
import type { RejectCode } from '../generated/orderflow/v1/RejectCode';
import type { OrderFlowDefinition } from '../generated/orderflow/v1/OrderFlow';
import type { IngestRequestInput } from '../ingest/event';
import type { AckOut, IngestStream, RejectOut, StreamSink } from '../ingest/ingest-stream';
import { ingestMetrics } from '../ingest/metrics';
import type { IngestPipeline } from '../ingest/pipeline';
import { validateSourceId } from '../ingest/validate';
import { decodeIngestRequest, WireFormatError, type DecodeOptions } from '../ingest/wire-format';
import type { Logger } from '../telemetry/logger';
import { getTracer } from '../telemetry/tracing';
import { endServerSpan, serverSpanStarter } from './server-span';
import { toGrpcStatus } from './status';

const startIngestSpan = serverSpanStarter('Ingest');

/** The Ingest RPC leaves plain valid events in their bytes (see DecodeOptions). */
const PLAIN_EVENTS_AS_BYTES: DecodeOptions = { plainEventsAsBytes: true };

/** The server side of one Ingest call: requests arrive as their bytes (see withIngestRequestsAsBytes). */
export type IngestCall = ServerDuplexStream<Buffer, IngestResponse>;

/** Life cycle of the Ingest service. */
export type IngestServiceState = 'RUNNING' | 'DRAINING' | 'CLOSED';

/**
 * The OrderFlow service definition with Ingest requests left as bytes:
 * each is decoded by the hand-written decoder (ingest/wire-format.ts; plain
 * valid events stay in their bytes) only when the stream takes it. A message
 * waiting while a stream is paused is then one Buffer, not hundreds of
 * decoded objects that outlive the young generation: at 16 streams those
 * made 13% of the service's main thread garbage collection (issue #9).
 * proto-loader's decoder is an order of magnitude slower per event and
 * loses the events' raw bytes.
 */
export function withIngestRequestsAsBytes(definition: OrderFlowDefinition): OrderFlowDefinition {
  return {
    ...definition,
    Ingest: { ...definition.Ingest, requestDeserialize: keepBytes as unknown as OrderFlowDefinition['Ingest']['requestDeserialize'] },
  };
}

function keepBytes(buf: Buffer): Buffer {
  return buf;
}

/**
 * `OrderFlow.Ingest`: the stream protocol around the pipeline. The first
 * message must be Hello (else INVALID_ARGUMENT); Welcome answers it with the
 * source's last committed seq; EventBatches go to the pipeline, whose Rejects
 * and Acks are written back. A fenced stream ends with ABORTED, a stream
 * still open at shutdown with UNAVAILABLE after its last acks.
 */
export class IngestService {
  private stateValue: IngestServiceState = 'RUNNING';
  private readonly connections = new Set<IngestConnection>();
  private closePromise: Promise<void> | undefined;

  constructor(
    private readonly pipeline: IngestPipeline,
    private readonly logger: Logger,
  ) {}

  get state(): IngestServiceState {
    return this.stateValue;
  }

  /** The grpc-js handler for Ingest. */
  readonly handler = (call: IngestCall): void => {
    const connection = new IngestConnection(call, this.pipeline, this.logger, () => this.connections.delete(connection));
    if (this.stateValue !== 'RUNNING') {
      connection.endWith(new ShuttingDownError('ingest service'));
      return;
    }
    this.connections.add(connection);
    connection.start();
  };

  /**
   * Shutdown: stop reading every stream, flush what is buffered (acks go out
   * as flushes commit, for at most `graceMs`), then end every stream with
   * UNAVAILABLE so clients reconnect elsewhere. Idempotent.
   */
  close(graceMs: number): Promise<void> {
    if (!this.closePromise) this.closePromise = this.shutdown(graceMs);
    return this.closePromise;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.stateValue = 'DRAINING';
    for (const connection of this.connections) connection.stopReading();
    await this.pipeline.close(graceMs);
    for (const connection of [...this.connections]) connection.endWith(new ShuttingDownError('ingest service'));
    this.stateValue = 'CLOSED';
  }
}

type ConnectionState = 'AWAIT_HELLO' | 'OPENING' | 'OPEN' | 'HALF_CLOSED' | 'ENDED';

/** One Ingest call: protocol state, transport for the pipeline. */
class IngestConnection implements StreamSink {
  private state: ConnectionState = 'AWAIT_HELLO';
  private stream: IngestStream | undefined;
  /** The call's SERVER span, and the stream's span beneath it. */
  private readonly serverSpan: Span;
  private readonly span: Span;
  private stoppedReading = false;
  private sourceId = '';
  private readonly early: Buffer[] = [];
  private finished = false;

  constructor(
    private readonly call: IngestCall,
    private readonly pipeline: IngestPipeline,
    private readonly logger: Logger,
    private readonly onEnded: () => void,
  ) {
    const { span, parent } = startIngestSpan(call.metadata);
    this.serverSpan = span;
    this.span = getTracer().startSpan('ingest.stream', { attributes: { 'rpc.system': 'grpc', 'rpc.method': 'Ingest' } }, trace.setSpan(parent, span));
    ingestMetrics.openStreams.inc();
  }

  start(): void {
    this.call.on('data', (bytes: Buffer) => this.onMessage(bytes));
    this.call.on('end', () => this.onHalfClose());
    this.call.on('cancelled', () => this.finish('cancelled by the client', GrpcStatus.CANCELLED));
    this.call.on('close', () => this.finish('closed', GrpcStatus.CANCELLED));
    // Our own status errors are emitted on the call too; grpc-js turns them into the status.
    this.call.on('error', () => undefined);
  }

  private onMessage(bytes: Buffer): void {
    if (this.state === 'ENDED') return;
    if (this.state === 'OPENING') {
      // Reading is paused while Hello is answered; a message already on its way waits here, as bytes.
      this.early.push(bytes);
      return;
    }
    let msg: IngestRequestInput;
    try {
      msg = decodeIngestRequest(bytes, PLAIN_EVENTS_AS_BYTES);
    } catch (err) {
      // The whole message is refused before any of its events is used.
      this.endWith(err instanceof WireFormatError ? new InvalidArgumentError('IngestRequest', err.message) : err);
      return;
    }
    if (this.state === 'AWAIT_HELLO') {
      if (msg.msg !== 'hello' || !msg.hello) {
        this.endWith(new InvalidArgumentError('hello', 'the first message of an Ingest stream must be Hello'));
        return;
      }
      this.onHello(msg.hello.source_id);
      return;
    }
    if (msg.msg === 'batch' && msg.batch) {
      if (this.state !== 'OPEN' || !this.stream) return;
      try {
        this.pipeline.submit(this.stream, msg.batch, performance.now());
      } catch (err) {
        this.endWith(err);
      }
      return;
    }
    this.endWith(new InvalidArgumentError(msg.msg === 'hello' ? 'hello' : 'msg', msg.msg === 'hello' ? 'Hello may be sent only once per stream' : 'a message must carry hello or batch'));
  }

  private onHello(sourceId: string): void {
    const problem = validateSourceId(sourceId);
    if (problem) {
      this.endWith(new InvalidArgumentError('source_id', problem));
      return;
    }
    this.state = 'OPENING';
    this.sourceId = sourceId;
    // Batches sent right behind Hello wait until the Welcome has fixed where sequencing starts.
    this.call.pause();
    this.span.setAttribute('orderflow.source_id', sourceId);
    this.pipeline.openStream(sourceId, this, this.span.spanContext()).then(
      (stream) => {
        this.stream = stream;
        if (this.state !== 'OPENING') {
          this.pipeline.detach(stream);
          return;
        }
        this.state = 'OPEN';
        this.span.setAttribute('orderflow.epoch', stream.epoch);
        this.call.write({ welcome: { source_id: sourceId, last_committed_seq: stream.committedSeq } });
        for (const early of this.early.splice(0)) this.onMessage(early);
        if (!this.stoppedReading && !stream.paused && this.state === 'OPEN') this.call.resume();
      },
      (err: unknown) => this.endWith(err),
    );
  }

  private onHalfClose(): void {
    if (this.state === 'ENDED') return;
    if (this.state !== 'OPEN' || !this.stream) {
      this.endWith(new InvalidArgumentError('hello', 'the stream ended before Hello was answered'));
      return;
    }
    this.state = 'HALF_CLOSED';
    const stream = this.stream;
    // Everything the client sent is acked (or the stream is fenced) before the OK status.
    void this.pipeline.whenDrained(stream).then(() => {
      if (this.state !== 'HALF_CLOSED') return;
      this.state = 'ENDED';
      this.pipeline.detach(stream);
      this.call.end();
      this.finish('completed', GrpcStatus.OK);
    });
  }

  sendReject(reject: RejectOut): void {
    if (this.state === 'OPEN' || this.state === 'HALF_CLOSED') this.call.write({ reject: { seq: reject.seq, code: reject.code as RejectCode, reason: reject.reason } });
  }

  sendAck(ack: AckOut): void {
    if (this.state === 'OPEN' || this.state === 'HALF_CLOSED') this.call.write({ ack });
  }

  fenced(): void {
    this.endWith(new FencedError(this.sourceId));
  }

  pause(): void {
    if (this.state !== 'ENDED') this.call.pause();
  }

  resume(): void {
    if (this.state !== 'ENDED' && !this.stoppedReading) this.call.resume();
  }

  /** Shutdown: read no further messages. */
  stopReading(): void {
    this.stoppedReading = true;
    if (this.state !== 'ENDED') this.call.pause();
  }

  /** Ends the call with the status for `err` (after the messages already written). */
  endWith(err: unknown): void {
    if (this.state === 'ENDED') return;
    this.state = 'ENDED';
    if (this.stream) this.pipeline.detach(this.stream);
    const status = toGrpcStatus(err, this.logger);
    if (!(err instanceof OrderflowError) || status.code !== 0) {
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: status.details });
    }
    this.call.emit('error', status);
    this.finish(status.details, status.code);
  }

  /** Ends the call's spans; `code` is its status (the first one given counts). */
  private finish(reason: string, code: GrpcStatus): void {
    if (this.state !== 'ENDED') {
      this.state = 'ENDED';
      if (this.stream) this.pipeline.detach(this.stream);
    }
    if (this.finished) return;
    this.finished = true;
    this.span.setAttribute('orderflow.end_reason', reason);
    this.span.end();
    endServerSpan(this.serverSpan, code, reason);
    ingestMetrics.openStreams.dec();
    this.onEnded();
  }
}
