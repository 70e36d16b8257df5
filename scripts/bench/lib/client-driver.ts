import { createOrderFlowClient, type IngestProducer, type OrderFlowClient } from '../../../src/client';
import type { IngestDriver, IngestEvent, IngestStream } from './ingest-driver';
import { ScenarioUnavailableError } from './unavailable';

/**
 * The ingest scenarios driven through the client library (src/client): the
 * exactly-once producer with its window, batching and resume, as users run
 * it. Compared with `raw-stub`, the difference is the library's overhead.
 */
export class ClientLibraryDriver implements IngestDriver {
  readonly name = 'client';
  readonly sendsEncoded = false;
  private readonly clients: OrderFlowClient[] = [];

  constructor(
    private readonly port: number,
    private readonly welcomeTimeoutMs: number,
  ) {}

  async open(sourceId: string): Promise<IngestStream> {
    // One client (one HTTP/2 connection) per stream, like separate adapters.
    const client = createOrderFlowClient({ address: `127.0.0.1:${this.port}`, channelOptions: { 'grpc.use_local_subchannel_pool': 1 } });
    this.clients.push(client);
    let timer: NodeJS.Timeout | undefined;
    try {
      const producer = await Promise.race([
        client.openIngest({ sourceId, maxWindowEvents: 20_000, maxBatchEvents: 1_000, lingerMs: 1 }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new ScenarioUnavailableError(`the Ingest RPC sent no Welcome within ${this.welcomeTimeoutMs} ms after Hello`)), this.welcomeTimeoutMs);
        }),
      ]);
      return new ProducerStream(sourceId, producer);
    } catch (err) {
      if ((err as { code?: number }).code === 12) throw new ScenarioUnavailableError('the Ingest RPC answers UNIMPLEMENTED on this build');
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    for (const client of this.clients) void client.close();
    this.clients.length = 0;
  }
}

class ProducerStream implements IngestStream {
  rejects = 0;
  error: Error | undefined;
  readonly lastCommittedSeq: bigint;
  private ackListener: ((committedSeq: bigint, stored: number) => void) | undefined;
  private admitted: Promise<unknown> = Promise.resolve();

  constructor(
    readonly sourceId: string,
    private readonly producer: IngestProducer,
  ) {
    this.lastCommittedSeq = producer.lastCommittedSeq;
  }

  sendBatch(events: IngestEvent[]): boolean {
    const sends = events.map((event) => this.producer.send({ seq: event.seq, fill: event.fill, order: event.order } as Parameters<IngestProducer['send']>[0]));
    // One ack callback per batch (the last event's receipt covers the batch), so
    // the driver adds no per-event promise of its own.
    const last = sends[sends.length - 1];
    const count = events.length;
    void last?.then(
      (receipt) =>
        receipt.acked.then(
          (outcome) => this.ackListener?.(outcome.seq, count),
          (err: Error) => this.fail(err),
        ),
      (err: Error) => this.fail(err),
    );
    this.admitted = Promise.all(sends);
    // The producer admits sends asynchronously (they wait while its window is full).
    return false;
  }

  waitDrain(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    return this.admitted.then(() => undefined);
  }

  onAck(listener: (committedSeq: bigint, stored: number) => void): void {
    this.ackListener = listener;
  }

  async close(timeoutMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.producer.close().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  cancel(): void {
    void this.producer.destroy();
  }

  private fail(err: Error): void {
    if (err.name === 'EventRejectedError') this.rejects++;
    else this.error ??= err;
  }
}
