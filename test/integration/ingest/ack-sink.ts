import type { AckOut, RejectOut, StreamSink } from '../../../src/ingest/ingest-stream';

/** A StreamSink that records Acks and Rejects and lets a test wait for an Ack covering a seq. */
export class AckSink implements StreamSink {
  readonly acks: AckOut[] = [];
  readonly rejects: RejectOut[] = [];
  private waiters: { seq: number; resolve: () => void }[] = [];
  sendReject(reject: RejectOut): void {
    this.rejects.push(reject);
  }
  sendAck(ack: AckOut): void {
    this.acks.push(ack);
    this.waiters = this.waiters.filter((w) => (Number(ack.committed_seq) >= w.seq ? (w.resolve(), false) : true));
  }
  fenced(): void {}
  pause(): void {}
  resume(): void {}
  /** Resolves once an Ack's committed_seq reached `seq`. */
  acked(seq: number): Promise<void> {
    if (this.acks.some((a) => Number(a.committed_seq) >= seq)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ seq, resolve }));
  }
}
