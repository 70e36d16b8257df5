import * as grpc from '@grpc/grpc-js';
import type { Ack__Output } from '../../src/generated/orderflow/v1/Ack';
import type { Event } from '../../src/generated/orderflow/v1/Event';
import type { IngestRequest } from '../../src/generated/orderflow/v1/IngestRequest';
import type { IngestResponse__Output } from '../../src/generated/orderflow/v1/IngestResponse';
import type { OrderFlowClient } from '../../src/generated/orderflow/v1/OrderFlow';
import type { Reject__Output } from '../../src/generated/orderflow/v1/Reject';
import type { Welcome__Output } from '../../src/generated/orderflow/v1/Welcome';
import { orderFlowClient } from './grpc';

/** How an Ingest call ended. */
export interface EndStatus {
  code: grpc.status;
  details: string;
}

/**
 * A small driver over the raw generated Ingest stub: sends Hello, records
 * Welcome, Acks and Rejects in arrival order, and exposes the final status.
 */
export class IngestSession {
  readonly call: grpc.ClientDuplexStream<IngestRequest, IngestResponse__Output>;
  readonly acks: Ack__Output[] = [];
  readonly rejects: Reject__Output[] = [];
  /** Every response in order, as 'welcome' | 'ack' | 'reject'. */
  readonly order: string[] = [];
  readonly welcome: Promise<Welcome__Output>;
  readonly ended: Promise<EndStatus>;
  private ackWaiters: { seq: bigint; resolve: (ack: Ack__Output) => void }[] = [];
  private endStatus: EndStatus | undefined;

  constructor(
    readonly client: OrderFlowClient,
    readonly sourceId: string,
    options: { sendHello?: boolean } = {},
  ) {
    this.call = client.Ingest();
    let resolveWelcome!: (w: Welcome__Output) => void;
    let rejectWelcome!: (err: Error) => void;
    this.welcome = new Promise((resolve, reject) => {
      resolveWelcome = resolve;
      rejectWelcome = reject;
    });
    this.welcome.catch(() => undefined);
    this.ended = new Promise((resolve) => {
      const finish = (status: EndStatus) => {
        if (this.endStatus) return;
        this.endStatus = status;
        rejectWelcome(new Error(`stream ended before Welcome: ${grpc.status[status.code]} ${status.details}`));
        resolve(status);
      };
      this.call.on('status', (s: grpc.StatusObject) => finish({ code: s.code, details: s.details }));
      this.call.on('error', (err: grpc.ServiceError) => finish({ code: err.code, details: err.details }));
    });
    this.call.on('data', (msg: IngestResponse__Output) => {
      if (msg.welcome) {
        this.order.push('welcome');
        resolveWelcome(msg.welcome);
      } else if (msg.ack) {
        this.order.push('ack');
        this.acks.push(msg.ack);
        const seq = BigInt(msg.ack.committed_seq);
        this.ackWaiters = this.ackWaiters.filter((w) => {
          if (seq >= w.seq) w.resolve(msg.ack!);
          return seq < w.seq;
        });
      } else if (msg.reject) {
        this.order.push('reject');
        this.rejects.push(msg.reject);
      }
    });
    if (options.sendHello !== false) this.call.write({ hello: { source_id: sourceId } });
  }

  /** Sends one EventBatch; resolves once the transport took it (waits for 'drain' when full). */
  async send(events: Event[]): Promise<void> {
    if (!this.call.write({ batch: { events } })) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.call.off('drain', done);
          resolve();
        };
        this.call.on('drain', done);
        void this.ended.then(done);
      });
    }
  }

  /** Resolves with the first Ack whose committed_seq ≥ `seq`; rejects after `timeoutMs` or when the stream ends first. */
  waitForAck(seq: bigint | string | number, timeoutMs = 30_000): Promise<Ack__Output> {
    const want = BigInt(seq);
    const done = this.acks.find((a) => BigInt(a.committed_seq) >= want);
    if (done) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no Ack >= ${want} within ${timeoutMs} ms on ${this.sourceId}; last ${this.lastCommitted()}`)), timeoutMs);
      this.ackWaiters.push({
        seq: want,
        resolve: (ack) => {
          clearTimeout(timer);
          resolve(ack);
        },
      });
      void this.ended.then((status) => {
        clearTimeout(timer);
        reject(new Error(`stream ${this.sourceId} ended (${grpc.status[status.code]}: ${status.details}) before Ack >= ${want}`));
      });
    });
  }

  /** Highest committed_seq acked so far ('0' when none). */
  lastCommitted(): string {
    return this.acks.length === 0 ? '0' : this.acks[this.acks.length - 1]!.committed_seq;
  }

  /** Sum of a counter over every Ack. */
  total(field: 'stored' | 'rejected' | 'duplicates'): number {
    return this.acks.reduce((sum, a) => sum + a[field], 0);
  }

  /** Half-closes the stream (the server answers OK once everything is acked). */
  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

/** Opens a client and an Ingest session in one go; close the client after. */
export function openIngest(port: number, sourceId: string): { client: OrderFlowClient; session: IngestSession } {
  const client = orderFlowClient(port);
  return { client, session: new IngestSession(client, sourceId) };
}

/** Nanosecond timestamps above 2⁵³ so precision loss would show. */
export const BASE_TS_NS = 1_700_000_000_123_456_789n;

/** A valid fill with seq `seq`, its fields derived from `tag` and the seq. */
export function fillEvent(seq: bigint | number, tag = 'f'): Event {
  const n = BigInt(seq);
  return {
    seq: n.toString(),
    fill: {
      fill_id: `${tag}-fill-${n}`,
      order_id: `${tag}-ord-${n % 1000n}`,
      account_id: `acc-${n % 7n}`,
      symbol: n % 2n === 0n ? 'AAPL' : 'MSFT',
      side: n % 2n === 0n ? 1 : 2,
      price: `${100n + (n % 50n)}.${(n % 100n).toString().padStart(2, '0')}`,
      qty: `${1n + (n % 9n)}`,
      ts_ns: (BASE_TS_NS + n).toString(),
      fee: n % 3n === 0n ? '' : `-0.0${n % 10n}`,
      venue: 'XNAS',
    },
  };
}

/** A valid order event with seq `seq`. */
export function orderEvent(seq: bigint | number, tag = 'o'): Event {
  const n = BigInt(seq);
  const market = n % 5n === 0n;
  return {
    seq: n.toString(),
    order: {
      order_id: `${tag}-ord-${n}`,
      account_id: `acc-${n % 7n}`,
      symbol: 'ESZ5',
      side: 1,
      order_type: market ? 1 : 2,
      event_type: 1,
      price: market ? '' : `4500.${(n % 100n).toString().padStart(2, '0')}`,
      qty: '2',
      time_in_force: 1,
      ts_ns: (BASE_TS_NS + n).toString(),
      client_order_id: `cl-${n}`,
    },
  };
}

/** Alternating fills and order events for seqs `from`..`to` inclusive. */
export function mixedEvents(from: number, to: number, tag = 'm'): Event[] {
  const events: Event[] = [];
  for (let s = from; s <= to; s++) events.push(s % 2 === 0 ? fillEvent(s, tag) : orderEvent(s, tag));
  return events;
}
