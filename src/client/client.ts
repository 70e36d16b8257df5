import * as grpc from '@grpc/grpc-js';
import type { BatchGetOrdersRequest } from '../generated/orderflow/v1/BatchGetOrdersRequest';
import type { BatchGetOrdersResponse__Output } from '../generated/orderflow/v1/BatchGetOrdersResponse';
import type { BustFillsRequest } from '../generated/orderflow/v1/BustFillsRequest';
import type { BustFillsResponse__Output } from '../generated/orderflow/v1/BustFillsResponse';
import type { FillRecord__Output } from '../generated/orderflow/v1/FillRecord';
import type { GetOrderRequest } from '../generated/orderflow/v1/GetOrderRequest';
import type { GetPositionRequest } from '../generated/orderflow/v1/GetPositionRequest';
import type { ListFillsRequest } from '../generated/orderflow/v1/ListFillsRequest';
import type { ListFillsResponse__Output } from '../generated/orderflow/v1/ListFillsResponse';
import type { ListOrdersRequest } from '../generated/orderflow/v1/ListOrdersRequest';
import type { ListOrdersResponse__Output } from '../generated/orderflow/v1/ListOrdersResponse';
import type { Order__Output } from '../generated/orderflow/v1/Order';
import type { OrderFlowClient as OrderFlowStub } from '../generated/orderflow/v1/OrderFlow';
import type { Position__Output } from '../generated/orderflow/v1/Position';
import { loadOrderflowProto, orderFlowServiceDefinition } from '../rpc/proto';
import { ClientAbortedError, ClientClosedError, OrderFlowClientError, toClientError } from './errors';
import { channelOptionsFor, DEFAULT_DEADLINE_MS, resolveProducerOptions, type IngestProducerOptions, type OrderFlowClientOptions } from './options';
import { IngestProducer } from './producer';

/** Per-call options of the read methods. */
export interface CallOptions {
  /** Deadline relative to now, ms. Default: the client's `defaultDeadlineMs`. */
  deadlineMs?: number;
  /** Absolute deadline; wins over `deadlineMs`. */
  deadline?: Date;
  /** Cancels the call; it then rejects with ClientAbortedError (code CANCELLED). */
  signal?: AbortSignal;
  /** Request metadata (auth, trace context). */
  metadata?: grpc.Metadata;
}

/** Life cycle of the client. */
export type ClientState = 'OPEN' | 'CLOSING' | 'CLOSED';

interface ReadMethods {
  GetOrder: [GetOrderRequest, Order__Output];
  BatchGetOrders: [BatchGetOrdersRequest, BatchGetOrdersResponse__Output];
  ListOrders: [ListOrdersRequest, ListOrdersResponse__Output];
  ListFills: [ListFillsRequest, ListFillsResponse__Output];
  GetPosition: [GetPositionRequest, Position__Output];
  BustFills: [BustFillsRequest, BustFillsResponse__Output];
}

type UnaryMethod = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response?: unknown) => void) => grpc.ClientUnaryCall;

/**
 * A typed OrderFlow client: the read RPCs as promise-returning methods (with
 * a deadline and AbortSignal per call; failures are OrderFlowClientError with
 * the gRPC status as `code`), and `openIngest` for exactly-once producers.
 * One HTTP/2 channel is shared by every call and producer.
 */
export class OrderFlowClient {
  private readonly stub: OrderFlowStub;
  private readonly defaultDeadlineMs: number;
  private readonly producers = new Set<IngestProducer>();
  private readonly openSources = new Set<string>();
  private stateValue: ClientState = 'OPEN';
  private closePromise: Promise<void> | undefined;

  constructor(options: OrderFlowClientOptions) {
    const channelOptions = channelOptionsFor(options);
    const { proto } = loadOrderflowProto();
    this.stub = new proto.orderflow.v1.OrderFlow(options.address, options.credentials ?? grpc.credentials.createInsecure(), channelOptions);
    this.defaultDeadlineMs = options.defaultDeadlineMs ?? DEFAULT_DEADLINE_MS;
  }

  /** OPEN until `close()`. */
  get state(): ClientState {
    return this.stateValue;
  }

  /** Current state of one order. Rejects with code NOT_FOUND when unknown. */
  getOrder(request: GetOrderRequest, options?: CallOptions): Promise<Order__Output> {
    return this.unary('GetOrder', request, options);
  }

  /** Many orders in one call; unknown ids are in `missing`. */
  batchGetOrders(request: BatchGetOrdersRequest, options?: CallOptions): Promise<BatchGetOrdersResponse__Output> {
    return this.unary('BatchGetOrders', request, options);
  }

  /** One page of orders, newest first. */
  listOrders(request: ListOrdersRequest, options?: CallOptions): Promise<ListOrdersResponse__Output> {
    return this.unary('ListOrders', request, options);
  }

  /** One page of fills, newest first. */
  listFills(request: ListFillsRequest, options?: CallOptions): Promise<ListFillsResponse__Output> {
    return this.unary('ListFills', request, options);
  }

  /** Net position of one account in one symbol. */
  getPosition(request: GetPositionRequest, options?: CallOptions): Promise<Position__Output> {
    return this.unary('GetPosition', request, options);
  }

  /** Marks fills busted; unknown ids are in `not_found`. */
  bustFills(request: BustFillsRequest, options?: CallOptions): Promise<BustFillsResponse__Output> {
    return this.unary('BustFills', request, options);
  }

  /** Every order matching the filters, following page tokens (each page is one call with `options`). */
  async *iterateOrders(request: Omit<ListOrdersRequest, 'page_token'>, options?: CallOptions): AsyncGenerator<Order__Output> {
    let page_token = '';
    do {
      const page = await this.listOrders({ ...request, page_token }, options);
      yield* page.orders;
      page_token = page.next_page_token;
    } while (page_token !== '');
  }

  /** Every fill matching the filters, following page tokens (each page is one call with `options`). */
  async *iterateFills(request: Omit<ListFillsRequest, 'page_token'>, options?: CallOptions): AsyncGenerator<FillRecord__Output> {
    let page_token = '';
    do {
      const page = await this.listFills({ ...request, page_token }, options);
      yield* page.fills;
      page_token = page.next_page_token;
    } while (page_token !== '');
  }

  /**
   * Opens an exactly-once producer for one source and resolves once the
   * server's first Welcome arrived (retrying with backoff while the server is
   * unreachable). Rejects with ClientOptionsError, SpoolError, FencedError,
   * ClientAbortedError (options.signal) or the stream's fatal error
   * (e.g. UNIMPLEMENTED). One producer per source per client.
   */
  async openIngest(options: IngestProducerOptions): Promise<IngestProducer> {
    if (this.stateValue !== 'OPEN') throw new ClientClosedError();
    const resolved = resolveProducerOptions(options);
    if (this.openSources.has(resolved.sourceId)) {
      throw new OrderFlowClientError(grpc.status.FAILED_PRECONDITION, 'producer already open', {
        message: `A producer for source ${JSON.stringify(resolved.sourceId)} is already open on this client; a second one would fence it.`,
      });
    }
    this.openSources.add(resolved.sourceId);
    const ingest = orderFlowServiceDefinition().Ingest;
    let producer: IngestProducer | undefined;
    try {
      producer = await IngestProducer.open(
        {
          // Requests go out pre-encoded (event-codec.ts): the serializer is the identity.
          openStream: (metadata) => this.stub.makeBidiStreamRequest(ingest.path, (bytes: Buffer) => bytes, ingest.responseDeserialize, metadata ?? new grpc.Metadata(), {}),
          release: (p) => {
            this.producers.delete(p as IngestProducer);
            this.openSources.delete(p.sourceId);
          },
        },
        resolved,
      );
    } catch (err) {
      this.openSources.delete(resolved.sourceId);
      throw err;
    }
    if (producer.state === 'OPEN') this.producers.add(producer);
    return producer;
  }

  /**
   * Closes every open producer (each flushes, bounded by its closeTimeoutMs),
   * then the channel; read calls already in flight may still complete, new
   * ones fail with ClientClosedError. Idempotent.
   */
  close(): Promise<void> {
    if (!this.closePromise) {
      this.stateValue = 'CLOSING';
      this.closePromise = Promise.allSettled([...this.producers].map((p) => p.close())).then(() => {
        this.stub.close();
        this.stateValue = 'CLOSED';
      });
    }
    return this.closePromise;
  }

  private unary<M extends keyof ReadMethods>(method: M, request: ReadMethods[M][0], options: CallOptions = {}): Promise<ReadMethods[M][1]> {
    if (this.stateValue !== 'OPEN') return Promise.reject(new ClientClosedError());
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new ClientAbortedError({ cause: signal.reason }));
    const deadline = options.deadline ?? new Date(Date.now() + (options.deadlineMs ?? this.defaultDeadlineMs));
    return new Promise<ReadMethods[M][1]>((resolve, reject) => {
      let aborted = false;
      const fn = this.stub[method] as unknown as UnaryMethod;
      const call = fn.call(this.stub, request, options.metadata ?? new grpc.Metadata(), { deadline }, (err, response) => {
        signal?.removeEventListener('abort', onAbort);
        if (aborted) reject(new ClientAbortedError({ cause: signal?.reason }));
        else if (err) reject(toClientError(err, method));
        else resolve(response as ReadMethods[M][1]);
      });
      const onAbort = () => {
        aborted = true;
        call.cancel();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Creates an OrderFlow client for `options.address`. Throws ClientOptionsError for bad options. */
export function createOrderFlowClient(options: OrderFlowClientOptions): OrderFlowClient {
  return new OrderFlowClient(options);
}
