import * as grpc from '@grpc/grpc-js';
import type { Event__Output } from '../../src/generated/orderflow/v1/Event';
import type { IngestRequest__Output } from '../../src/generated/orderflow/v1/IngestRequest';
import type { IngestResponse } from '../../src/generated/orderflow/v1/IngestResponse';
import type { Order } from '../../src/generated/orderflow/v1/Order';
import type { OrderFlowHandlers } from '../../src/generated/orderflow/v1/OrderFlow';
import type { Position } from '../../src/generated/orderflow/v1/Position';
import { RejectCode } from '../../src/generated/orderflow/v1/RejectCode';
import { orderFlowServiceDefinition } from '../../src/rpc/proto';

/** A verdict of a reject rule. */
export interface FakeRejection {
  code: number;
  reason: string;
}

/** The durable state of one source (survives restart()). */
export interface FakeSource {
  /** Committed high-water mark. */
  mark: bigint;
  /** Stored events by seq. */
  stored: Map<bigint, Event__Output>;
  /** Quarantined events by seq. */
  quarantined: Map<bigint, FakeRejection>;
  /** Times an already stored seq was stored again: must stay 0. */
  doubleStores: number;
  /** Events dropped as duplicates. */
  duplicates: number;
}

/** Options of the fake server. */
export interface FakeIngestServerOptions {
  /** Events for which this returns a verdict are rejected (and quarantined). */
  rejectIf?: (event: Event__Output) => FakeRejection | undefined;
  /** Commit latency: a stream's buffered events commit this long after the first of them arrived, ms. Default 0 (next tick). */
  ackDelayMs?: number;
  /** Uncommitted events per stream before the server stops reading it (HTTP/2 flow control then holds the client). Default 10,000. */
  maxBufferedPerStream?: number;
  /** Durable state shared with another fake (two instances on one database). */
  sources?: Map<string, FakeSource>;
}

interface StreamState {
  id: number;
  call: grpc.ServerDuplexStream<IngestRequest__Output, IngestResponse>;
  sourceId: string | undefined;
  lastSeq: bigint;
  buffered: { seq: bigint; event: Event__Output; rejection: FakeRejection | undefined }[];
  counts: { stored: number; rejected: number; duplicates: number };
  timer: NodeJS.Timeout | undefined;
  paused: boolean;
  ended: boolean;
}

/**
 * An in-memory OrderFlow server over real gRPC on 127.0.0.1, implementing the
 * Ingest protocol of DESIGN.md (Hello/Welcome, dedupe by seq, Rejects, Acks
 * after "commit", fencing by a newer Hello, flow control when buffers are
 * full) and simple read RPCs, with knobs to inject faults: drop streams after
 * N events (gracefully or losing uncommitted events), restart with the same
 * durable state, fence, stall commits, delay reads.
 */
export class FakeIngestServer {
  /** Durable state by source id. */
  readonly sources: Map<string, FakeSource>;
  /** Canned orders for GetOrder / BatchGetOrders / ListOrders. */
  readonly orders = new Map<string, Order>();
  /** Canned positions by `${account}/${symbol}`. */
  readonly positions = new Map<string, Position>();
  /** Delay of every read RPC, ms. */
  readDelayMs = 0;
  /** When set, every read RPC fails with it. */
  readError: { code: grpc.status; details: string; errorCode?: string } | undefined;
  /** Read calls the server saw cancelled by the client. */
  readCancellations = 0;
  rejectIf: ((event: Event__Output) => FakeRejection | undefined) | undefined;
  ackDelayMs: number;
  maxBufferedPerStream: number;
  /** What happens to a stream's uncommitted events when its client goes away: committed (as a pipeline that already read them would) or lost. */
  onClientGone: 'commit' | 'discard' = 'commit';
  /** Counters. */
  readonly counts = { hellos: 0, eventsReceived: 0, batchesReceived: 0, fences: 0, drops: 0, maxBufferedSeen: 0, pauses: 0 };

  private server: grpc.Server | undefined;
  private portValue = 0;
  private readonly streams = new Set<StreamState>();
  private streamIds = 0;
  private stalled = false;
  private drop: { afterEvents: number; mode: 'graceful' | 'abrupt'; repeat: boolean; every: number } | undefined;

  constructor(options: FakeIngestServerOptions = {}) {
    this.rejectIf = options.rejectIf;
    this.ackDelayMs = options.ackDelayMs ?? 0;
    this.maxBufferedPerStream = options.maxBufferedPerStream ?? 10_000;
    this.sources = options.sources ?? new Map();
  }

  /** Bound port. */
  get port(): number {
    return this.portValue;
  }

  /** `127.0.0.1:<port>`. */
  get address(): string {
    return `127.0.0.1:${this.portValue}`;
  }

  /** Open Ingest streams. */
  get openStreams(): number {
    return [...this.streams].filter((s) => !s.ended).length;
  }

  /** Starts listening (on `port`, default any free port). */
  async start(port = 0): Promise<void> {
    const server = new grpc.Server();
    server.addService(orderFlowServiceDefinition(), this.handlers() as unknown as grpc.UntypedServiceImplementation);
    this.portValue = await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    this.server = server;
  }

  /** Kills every stream at once (uncommitted events are lost, like a crash) and stops listening. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.streams) this.forget(s);
    if (server) {
      server.forceShutdown();
    }
  }

  /** A crash and a restart on the same port with the same durable state. `downMs` is the time it stays unreachable. */
  async restart(downMs = 0): Promise<void> {
    const port = this.portValue;
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    // The kernel may not have released the port yet.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.start(port);
        return;
      } catch (err) {
        if (attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /**
   * After `afterEvents` more received events, ends the stream that received the
   * last one with UNAVAILABLE. `graceful` commits and acks what it holds first
   * (a shutdown); `abrupt` loses its uncommitted events (a crash of the stream).
   * `repeat` re-arms the drop every `afterEvents` events.
   */
  dropStreamsAfter(afterEvents: number, mode: 'graceful' | 'abrupt', repeat = false): void {
    this.drop = { afterEvents: this.counts.eventsReceived + afterEvents, mode, repeat, every: afterEvents };
  }

  /** Stops dropping streams. */
  stopDropping(): void {
    this.drop = undefined;
  }

  /** Ends the source's open stream with ABORTED, as a newer stream elsewhere would; its uncommitted events are discarded. */
  fence(sourceId: string): void {
    for (const s of this.streams) if (s.sourceId === sourceId && !s.ended) this.fenceStream(s);
  }

  /** Commits what the source's stream holds, then ends it with UNAVAILABLE before the ack goes out (an ack lost with the connection). */
  commitSilentlyAndDrop(sourceId: string): void {
    for (const s of this.streams) {
      if (s.sourceId !== sourceId || s.ended) continue;
      this.commit(s, { force: true, ack: false });
      this.endStream(s, grpc.status.UNAVAILABLE, 'The connection was lost (fault injection).');
    }
  }

  /** Stops (true) or resumes (false) committing; while stalled nothing is acked and buffers fill. */
  stall(on: boolean): void {
    this.stalled = on;
    if (!on) for (const s of this.streams) this.scheduleCommit(s);
  }

  /** The durable state of a source (created empty when unknown). */
  source(sourceId: string): FakeSource {
    let source = this.sources.get(sourceId);
    if (!source) {
      source = { mark: 0n, stored: new Map(), quarantined: new Map(), doubleStores: 0, duplicates: 0 };
      this.sources.set(sourceId, source);
    }
    return source;
  }

  // --- Ingest -----------------------------------------------------------------

  private handlers(): Partial<OrderFlowHandlers> {
    return {
      Ingest: (call) => this.onIngest(call),
      GetOrder: (call, callback) =>
        this.read(call, callback, () => {
          const order = this.orders.get(call.request.order_id);
          if (!order) throw notFound(`order ${call.request.order_id}`);
          return order;
        }),
      BatchGetOrders: (call, callback) =>
        this.read(call, callback, () => {
          const ids = call.request.order_ids;
          return { orders: ids.filter((id) => this.orders.has(id)).map((id) => this.orders.get(id)!), missing: ids.filter((id) => !this.orders.has(id)) };
        }),
      ListOrders: (call, callback) =>
        this.read(call, callback, () => {
          const all = [...this.orders.values()].filter((o) => !call.request.account_id || o.account_id === call.request.account_id);
          const { page, next } = paginate(all, call.request.page_size, call.request.page_token);
          return { orders: page, next_page_token: next };
        }),
      ListFills: (call, callback) =>
        this.read(call, callback, () => {
          const all = [...this.sources.entries()].flatMap(([sourceId, s]) =>
            [...s.stored.entries()].filter(([, e]) => e.fill && (!call.request.order_id || e.fill.order_id === call.request.order_id)).map(([seq, e]) => ({ fill: e.fill, source_id: sourceId, seq: seq.toString(), busted: false, bust_reason: '' })),
          );
          const { page, next } = paginate(all, call.request.page_size, call.request.page_token);
          return { fills: page, next_page_token: next };
        }),
      GetPosition: (call, callback) =>
        this.read(call, callback, () => {
          const position = this.positions.get(`${call.request.account_id}/${call.request.symbol}`);
          return position ?? { account_id: call.request.account_id, symbol: call.request.symbol, net_qty: '0', buy_qty: '0', sell_qty: '0', fill_count: 0 };
        }),
      BustFills: (call, callback) =>
        this.read(call, callback, () => {
          const known = new Set([...this.sources.values()].flatMap((s) => [...s.stored.values()].map((e) => e.fill?.fill_id)));
          return { busted: call.request.fill_ids.filter((id) => known.has(id)).length, not_found: call.request.fill_ids.filter((id) => !known.has(id)) };
        }),
    };
  }

  private read<T>(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<T>, answer: () => T): void {
    let done = false;
    call.on('cancelled', () => {
      if (!done) this.readCancellations++;
    });
    setTimeout(() => {
      done = true;
      if (call.cancelled) return;
      try {
        if (this.readError) throw withMetadata(this.readError.code, this.readError.details, this.readError.errorCode);
        callback(null, answer());
      } catch (err) {
        callback(err as grpc.ServiceError);
      }
    }, this.readDelayMs);
  }

  private onIngest(call: grpc.ServerDuplexStream<IngestRequest__Output, IngestResponse>): void {
    const stream: StreamState = { id: ++this.streamIds, call, sourceId: undefined, lastSeq: 0n, buffered: [], counts: { stored: 0, rejected: 0, duplicates: 0 }, timer: undefined, paused: false, ended: false };
    this.streams.add(stream);
    call.on('data', (msg: IngestRequest__Output) => {
      if (stream.ended) return;
      if (stream.sourceId === undefined) {
        if (!msg.hello) return this.endStream(stream, grpc.status.INVALID_ARGUMENT, 'The first message must be Hello.');
        return this.onHello(stream, msg.hello.source_id);
      }
      if (msg.batch) this.onBatch(stream, msg.batch.events);
    });
    // A client that goes away leaves its received events to be committed, as a pipeline would.
    const gone = () => {
      if (stream.ended) return;
      if (this.onClientGone === 'commit') this.commit(stream, { force: true, ack: false });
      this.forget(stream);
    };
    call.on('end', () => {
      gone();
      call.end();
    });
    call.on('cancelled', gone);
    call.on('error', () => undefined);
  }

  private onHello(stream: StreamState, sourceId: string): void {
    this.counts.hellos++;
    if (!sourceId) return this.endStream(stream, grpc.status.INVALID_ARGUMENT, 'source_id must not be empty.');
    for (const other of this.streams) if (other !== stream && other.sourceId === sourceId && !other.ended) this.fenceStream(other);
    stream.sourceId = sourceId;
    const source = this.source(sourceId);
    stream.call.write({ welcome: { source_id: sourceId, last_committed_seq: source.mark.toString() } });
  }

  private onBatch(stream: StreamState, events: Event__Output[]): void {
    this.counts.batchesReceived++;
    const source = this.source(stream.sourceId!);
    const inflight = () => (stream.buffered.length > 0 ? stream.buffered[stream.buffered.length - 1]!.seq : source.mark);
    for (const event of events) {
      this.counts.eventsReceived++;
      const seq = BigInt(event.seq);
      if (seq === 0n || seq <= stream.lastSeq) {
        this.reject(stream, seq, event, { code: RejectCode.REJECT_CODE_INVALID_SEQ, reason: `seq ${seq} is not above ${stream.lastSeq}` });
      } else if (seq <= inflight() || seq <= source.mark) {
        stream.counts.duplicates++;
        source.duplicates++;
      } else {
        const rejection = this.rejectIf?.(event) ?? (event.payload ? undefined : { code: RejectCode.REJECT_CODE_MISSING_PAYLOAD, reason: 'the event carries neither an order nor a fill' });
        if (rejection) this.reject(stream, seq, event, rejection);
        else stream.buffered.push({ seq, event, rejection: undefined });
      }
      if (seq > stream.lastSeq) stream.lastSeq = seq;
      if (this.drop && this.counts.eventsReceived >= this.drop.afterEvents) {
        const { mode, repeat, every } = this.drop;
        this.drop = repeat ? { afterEvents: this.counts.eventsReceived + every, mode, repeat, every } : undefined;
        this.counts.drops++;
        if (mode === 'graceful') this.commit(stream, { force: true, ack: true });
        return this.endStream(stream, grpc.status.UNAVAILABLE, 'The stream was dropped (fault injection).');
      }
    }
    this.counts.maxBufferedSeen = Math.max(this.counts.maxBufferedSeen, stream.buffered.length);
    if (stream.buffered.length >= this.maxBufferedPerStream && !stream.paused) {
      // Stop reading: grpc-js stops pulling from HTTP/2, whose window then fills.
      stream.paused = true;
      this.counts.pauses++;
      stream.call.pause();
    }
    this.scheduleCommit(stream);
  }

  private reject(stream: StreamState, seq: bigint, event: Event__Output, rejection: FakeRejection): void {
    stream.buffered.push({ seq, event, rejection });
    stream.call.write({ reject: { seq: seq.toString(), code: rejection.code as RejectCode, reason: rejection.reason } });
  }

  private scheduleCommit(stream: StreamState): void {
    if (stream.timer || stream.ended || this.stalled || stream.buffered.length === 0) return;
    stream.timer = setTimeout(() => {
      stream.timer = undefined;
      this.commit(stream, { force: false, ack: true });
    }, this.ackDelayMs);
  }

  /** Commits the stream's buffered events (`force`: even while stalled) and acks them (`ack`: the client is still there). */
  private commit(stream: StreamState, how: { force: boolean; ack: boolean }): void {
    if (stream.ended || (this.stalled && !how.force)) return;
    if (stream.timer) clearTimeout(stream.timer);
    stream.timer = undefined;
    const source = this.source(stream.sourceId ?? '');
    for (const { seq, event, rejection } of stream.buffered) {
      if (seq <= source.mark) {
        stream.counts.duplicates++;
        source.duplicates++;
        continue;
      }
      if (rejection) {
        source.quarantined.set(seq, rejection);
        stream.counts.rejected++;
      } else {
        if (source.stored.has(seq)) source.doubleStores++;
        source.stored.set(seq, event);
        stream.counts.stored++;
      }
      source.mark = seq;
    }
    const hadWork = stream.buffered.length > 0 || stream.counts.duplicates > 0;
    stream.buffered = [];
    if (hadWork && how.ack && stream.sourceId !== undefined) {
      stream.call.write({ ack: { committed_seq: source.mark.toString(), ...stream.counts } });
      stream.counts = { stored: 0, rejected: 0, duplicates: 0 };
    }
    if (stream.paused) {
      stream.paused = false;
      stream.call.resume();
    }
  }

  private fenceStream(stream: StreamState): void {
    this.counts.fences++;
    // Uncommitted events of a fenced stream are never committed.
    stream.buffered = [];
    this.endStream(stream, grpc.status.ABORTED, 'A newer stream for this source took over.', 'FENCED');
  }

  private endStream(stream: StreamState, code: grpc.status, details: string, errorCode?: string): void {
    if (stream.ended) return;
    stream.buffered = [];
    this.forget(stream);
    // emit('error') is how a grpc-js server stream ends with a status: its own
    // listener records the status and ends the call (destroy() would skip _final).
    stream.call.emit('error', withMetadata(code, details, errorCode));
  }

  private forget(stream: StreamState): void {
    stream.ended = true;
    stream.buffered = [];
    if (stream.timer) clearTimeout(stream.timer);
    stream.timer = undefined;
    this.streams.delete(stream);
  }
}

function withMetadata(code: grpc.status, details: string, errorCode?: string): Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  if (errorCode) metadata.set('orderflow-error-code', errorCode);
  return Object.assign(new Error(details), { code, details, metadata });
}

function notFound(what: string): Partial<grpc.ServiceError> {
  return withMetadata(grpc.status.NOT_FOUND, `${what} not found`, 'NOT_FOUND');
}

function paginate<T>(all: T[], pageSize: number, token: string): { page: T[]; next: string } {
  const start = token ? Number(token) : 0;
  const size = pageSize || 100;
  const page = all.slice(start, start + size);
  return { page, next: start + size < all.length ? String(start + size) : '' };
}
