import type * as grpc from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { cacheKey, type CacheItem, type CacheSource, type QueryCache } from '../db/cache';
import { CancelledError, InvalidArgumentError, NotFoundError } from '../errors';
import type { FillRecord } from '../generated/orderflow/v1/FillRecord';
import type { Order } from '../generated/orderflow/v1/Order';
import type { OrderFlowHandlers } from '../generated/orderflow/v1/OrderFlow';
import type { OrderStatus__Output } from '../generated/orderflow/v1/OrderStatus';
import type { OrderType__Output } from '../generated/orderflow/v1/OrderType';
import type { Position } from '../generated/orderflow/v1/Position';
import type { Side__Output } from '../generated/orderflow/v1/Side';
import type { TimeInForce__Output } from '../generated/orderflow/v1/TimeInForce';
import { accountTag, ANY_CHANGE_TAG, orderTag, positionTag } from '../store/cache-tags';
import type { FillCursor, FillFilter, FillRecordRow, FillStore } from '../store/fills';
import type { OrderCursor, OrderFilter, OrderState, OrderStore } from '../store/orders';
import type { PositionState, PositionStore } from '../store/positions';
import type { Logger } from '../telemetry/logger';
import { getTracer } from '../telemetry/tracing';
import type { PageTokenCodec, PageTokenFilters } from './page-token';
import {
  checkTimeRange,
  MAX_ID_CHARS,
  MAX_SYMBOL_CHARS,
  readId,
  readOrderIds,
  readPageSize,
  readStatusFilter,
  readTimeBound,
} from './read-arguments';
import { ORDERFLOW_SERVICE_NAME } from './proto';
import { toGrpcStatus } from './status';

/** The read RPCs this module implements. */
export type QueryHandlers = Pick<OrderFlowHandlers, 'GetOrder' | 'BatchGetOrders' | 'ListOrders' | 'ListFills' | 'GetPosition'>;

/** What the query handlers read through. */
export interface QueryServiceOptions {
  cache: QueryCache;
  orders: OrderStore;
  fills: FillStore;
  positions: PositionStore;
  pageTokens: PageTokenCodec;
  logger: Logger;
}

/** Cache kinds: the `cache` label of the cache metrics. */
const KIND = { order: 'order', orderList: 'order_list', fillList: 'fill_list', position: 'position' } as const;

/**
 * The read RPCs: validate, read through the query cache (misses go to the
 * store's SQL), map to the wire. Each call has a server span recording how
 * the cache answered; a call's cancel or deadline aborts its wait (and the
 * query, when no other caller shares it).
 */
export function createQueryHandlers(options: QueryServiceOptions): QueryHandlers {
  const { cache, orders, fills, positions, pageTokens, logger } = options;

  const orderItem = (orderId: string): CacheItem => ({ key: cacheKey('orders.get', { order_id: orderId }), tags: [orderTag(orderId)] });

  return {
    GetOrder: unary('GetOrder', logger, async (req, signal, span) => {
      const orderId = readId('order_id', req.order_id, MAX_ID_CHARS, true)!;
      const result = await cache.get(KIND.order, orderItem(orderId), async (s) => (await orders.getOrders([orderId], s))[0]!, signal);
      recordCache(span, [result.source]);
      if (!result.value) throw new NotFoundError('order', orderId);
      return toOrder(result.value);
    }),

    BatchGetOrders: unary('BatchGetOrders', logger, async (req, signal, span) => {
      const ids = [...new Set(readOrderIds(req.order_ids))];
      const idByKey = new Map(ids.map((id) => [orderItem(id).key, id]));
      const results = await cache.getMany(
        KIND.order,
        ids.map(orderItem),
        (items, s) => orders.getOrders(items.map((item) => idByKey.get(item.key)!), s),
        signal,
      );
      recordCache(
        span,
        results.map((r) => r.source),
      );
      const found: Order[] = [];
      const missing: string[] = [];
      results.forEach((r, i) => (r.value ? found.push(toOrder(r.value)) : missing.push(ids[i]!)));
      return { orders: found, missing };
    }),

    ListOrders: unary('ListOrders', logger, async (req, signal, span) => {
      const filter: OrderFilter = {
        accountId: readId('account_id', req.account_id, MAX_ID_CHARS, false),
        symbol: readId('symbol', req.symbol, MAX_SYMBOL_CHARS, false),
        status: readStatusFilter(req.status),
        fromTsNs: readTimeBound('from_ts_ns', req.from_ts_ns),
        toTsNs: readTimeBound('to_ts_ns', req.to_ts_ns),
      };
      checkTimeRange(filter.fromTsNs, filter.toTsNs);
      const pageSize = readPageSize(req.page_size);
      const tokenFilters: PageTokenFilters = {
        account_id: req.account_id,
        symbol: req.symbol,
        status: String(filter.status ?? 0),
        from_ts_ns: String(filter.fromTsNs ?? 0n),
        to_ts_ns: String(filter.toTsNs ?? 0n),
      };
      let cursor: OrderCursor | undefined;
      if (req.page_token !== '') {
        const c = pageTokens.decode('orders', tokenFilters, req.page_token, ['t', 'o']);
        cursor = { createdTsNs: cursorBigInt(c.t!), orderId: c.o! };
      }
      // One row more than the page tells whether there is a next page.
      const item: CacheItem = {
        key: cacheKey('orders.list', { ...tokenFilters, after_ts_ns: cursor?.createdTsNs.toString(), after_order_id: cursor?.orderId, limit: pageSize + 1 }),
        tags: [ANY_CHANGE_TAG],
      };
      const result = await cache.get(KIND.orderList, item, (s) => orders.listOrders(filter, cursor, pageSize + 1, s), signal);
      recordCache(span, [result.source]);
      const page = result.value.slice(0, pageSize);
      const last = page[page.length - 1];
      const next = result.value.length > pageSize && last ? pageTokens.encode('orders', tokenFilters, { t: last.createdTsNs, o: last.orderId }) : '';
      return { orders: page.map(toOrder), next_page_token: next };
    }),

    ListFills: unary('ListFills', logger, async (req, signal, span) => {
      const filter: FillFilter = {
        accountId: readId('account_id', req.account_id, MAX_ID_CHARS, false),
        orderId: readId('order_id', req.order_id, MAX_ID_CHARS, false),
        symbol: readId('symbol', req.symbol, MAX_SYMBOL_CHARS, false),
        fromTsNs: readTimeBound('from_ts_ns', req.from_ts_ns),
        toTsNs: readTimeBound('to_ts_ns', req.to_ts_ns),
      };
      checkTimeRange(filter.fromTsNs, filter.toTsNs);
      const pageSize = readPageSize(req.page_size);
      const tokenFilters: PageTokenFilters = {
        account_id: req.account_id,
        order_id: req.order_id,
        symbol: req.symbol,
        from_ts_ns: String(filter.fromTsNs ?? 0n),
        to_ts_ns: String(filter.toTsNs ?? 0n),
      };
      let cursor: FillCursor | undefined;
      if (req.page_token !== '') {
        const c = pageTokens.decode('fills', tokenFilters, req.page_token, ['t', 's', 'q']);
        cursor = { tsNs: cursorBigInt(c.t!), sourceId: c.s!, seq: cursorBigInt(c.q!) };
      }
      // New fills carry their account and order, so those tags are exact; other filters depend on any change.
      const tags = filter.accountId !== undefined ? [accountTag(filter.accountId)] : filter.orderId !== undefined ? [orderTag(filter.orderId)] : [ANY_CHANGE_TAG];
      const item: CacheItem = {
        key: cacheKey('fills.list', {
          ...tokenFilters,
          after_ts_ns: cursor?.tsNs.toString(),
          after_source_id: cursor?.sourceId,
          after_seq: cursor?.seq.toString(),
          limit: pageSize + 1,
        }),
        tags,
      };
      const result = await cache.get(KIND.fillList, item, (s) => fills.listFills(filter, cursor, pageSize + 1, s), signal);
      recordCache(span, [result.source]);
      const page = result.value.slice(0, pageSize);
      const last = page[page.length - 1];
      const next = result.value.length > pageSize && last ? pageTokens.encode('fills', tokenFilters, { t: last.tsNs, s: last.sourceId, q: last.seq }) : '';
      return { fills: page.map(toFillRecord), next_page_token: next };
    }),

    GetPosition: unary('GetPosition', logger, async (req, signal, span) => {
      const accountId = readId('account_id', req.account_id, MAX_ID_CHARS, true)!;
      const symbol = readId('symbol', req.symbol, MAX_SYMBOL_CHARS, true)!;
      const item: CacheItem = { key: cacheKey('positions.get', { account_id: accountId, symbol }), tags: [positionTag(accountId, symbol)] };
      const result = await cache.get(KIND.position, item, (s) => positions.getPosition(accountId, symbol, s), signal);
      recordCache(span, [result.source]);
      return toPosition(result.value);
    }),
  };
}

/** A bigint field of a (verified) cursor; a token of another format is refused, never a crash. */
function cursorBigInt(value: string): bigint {
  if (!/^\d{1,20}$/.test(value)) throw new InvalidArgumentError('page_token', 'is not a token this service issued for these filters');
  return BigInt(value);
}

/** Span attributes of how the cache answered: `orderflow.cache.hit` (all hits) and counts per source. */
function recordCache(span: Span, sources: readonly CacheSource[]): void {
  const count = (source: CacheSource) => sources.filter((s) => s === source).length;
  span.setAttributes({
    'orderflow.cache.hit': sources.length > 0 && sources.every((s) => s === 'hit'),
    'orderflow.cache.hits': count('hit'),
    'orderflow.cache.misses': count('miss'),
    'orderflow.cache.coalesced': count('coalesced'),
  });
}

/**
 * A unary handler with a server span, an AbortSignal that fires on the
 * call's cancel or deadline, and errors mapped by toGrpcStatus only.
 */
export function unary<Req, Res>(method: string, logger: Logger, fn: (req: Req, signal: AbortSignal, span: Span) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const controller = new AbortController();
    const onCancelled = () => controller.abort(new CancelledError());
    call.on('cancelled', onCancelled);
    // grpc-js answers DEADLINE_EXCEEDED by itself at the deadline; stop our work then too.
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    const timer = Number.isFinite(deadlineMs) ? setTimeout(onCancelled, Math.max(0, deadlineMs - Date.now())) : undefined;
    timer?.unref();
    getTracer().startActiveSpan(
      `${ORDERFLOW_SERVICE_NAME}/${method}`,
      { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': ORDERFLOW_SERVICE_NAME, 'rpc.method': method } },
      async (span) => {
        try {
          const response = await fn(call.request, controller.signal, span);
          span.setAttribute('rpc.grpc.status_code', 0);
          callback(null, response);
        } catch (err) {
          const status = toGrpcStatus(err, logger);
          span.setAttribute('rpc.grpc.status_code', status.code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: status.details });
          callback(status as grpc.ServerErrorResponse);
        } finally {
          clearTimeout(timer);
          call.removeListener('cancelled', onCancelled);
          span.end();
        }
      },
    );
  };
}

function toOrder(o: OrderState): Order {
  return {
    order_id: o.orderId,
    client_order_id: o.clientOrderId,
    account_id: o.accountId,
    symbol: o.symbol,
    // Enum numbers as stored; the database only holds values validation accepted.
    side: o.side as Side__Output,
    order_type: o.orderType as OrderType__Output,
    time_in_force: o.timeInForce as TimeInForce__Output,
    status: o.status as OrderStatus__Output,
    price: o.price,
    qty: o.qty,
    filled_qty: o.filledQty,
    avg_fill_price: o.avgFillPrice,
    created_ts_ns: o.createdTsNs,
    updated_ts_ns: o.updatedTsNs,
  };
}

function toFillRecord(f: FillRecordRow): FillRecord {
  return {
    fill: {
      fill_id: f.fillId,
      order_id: f.orderId,
      account_id: f.accountId,
      symbol: f.symbol,
      side: f.side as Side__Output,
      price: f.price,
      qty: f.qty,
      ts_ns: f.tsNs,
      fee: f.fee,
      venue: f.venue,
    },
    source_id: f.sourceId,
    seq: f.seq,
    busted: f.busted,
    bust_reason: f.bustReason,
  };
}

function toPosition(p: PositionState): Position {
  return {
    account_id: p.accountId,
    symbol: p.symbol,
    net_qty: p.netQty,
    buy_qty: p.buyQty,
    sell_qty: p.sellQty,
    avg_buy_price: p.avgBuyPrice,
    avg_sell_price: p.avgSellPrice,
    fill_count: p.fillCount,
    updated_ts_ns: p.updatedTsNs,
  };
}
