import type { Span } from '@opentelemetry/api';
import { cacheKey, type Cached, type CacheItem, type CacheKey, type CacheSource, type QueryCache } from '../db/cache';
import { InvalidArgumentError, NotFoundError } from '../errors';
import type { FillRecord } from '../generated/orderflow/v1/FillRecord';
import type { ListFillsResponse } from '../generated/orderflow/v1/ListFillsResponse';
import type { ListOrdersResponse } from '../generated/orderflow/v1/ListOrdersResponse';
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
import { AnswerMemo } from './read-serializers';
import { unary, unaryCall } from './unary-call';

export { unary } from './unary-call';

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

  const orderKey = (orderId: string): CacheKey => cacheKey('orders.get', { order_id: orderId });
  const orderItem = (orderId: string): CacheItem => ({ key: orderKey(orderId), tags: [orderTag(orderId)] });
  // Order entries hold the frozen wire message, built once per fetch: a hit
  // hands the same object to grpc-js, whose GetOrder serializer keeps its
  // bytes (rpc/read-serializers.ts). Invalidating the entry drops both.
  const fetchOrders = async (ids: readonly string[], signal: AbortSignal): Promise<(Readonly<Order> | null)[]> =>
    (await orders.getOrders(ids, signal)).map((o) => (o ? Object.freeze(toOrder(o)) : null));
  // Pages and positions likewise: one frozen answer per cached value, whose bytes grpc-js keeps.
  const orderPages = new AnswerMemo<readonly OrderState[], ListOrdersResponse>();
  const fillPages = new AnswerMemo<readonly FillRecordRow[], ListFillsResponse>();
  const positionAnswers = new AnswerMemo<PositionState, Position>();

  return {
    GetOrder: unaryCall('GetOrder', logger, (req, scope) => {
      const orderId = readId('order_id', req.order_id, MAX_ID_CHARS, true)!;
      // A stored entry answers at once: no promise, no cancellation scope, no span context switch.
      const hit = cache.peek<Readonly<Order> | null>(KIND.order, orderKey(orderId));
      if (hit) return answerOrder(scope.span, hit, orderId);
      return scope.inSpan(() =>
        cache.get(KIND.order, orderItem(orderId), async (s) => (await fetchOrders([orderId], s))[0]!, scope.signal).then((result) => answerOrder(scope.span, result, orderId)),
      );
    }),

    BatchGetOrders: unary('BatchGetOrders', logger, async (req, signal, span) => {
      const ids = [...new Set(readOrderIds(req.order_ids))];
      const idByKey = new Map(ids.map((id) => [orderItem(id).key, id]));
      const results = await cache.getMany(
        KIND.order,
        ids.map(orderItem),
        (items, s) => fetchOrders(items.map((item) => idByKey.get(item.key)!), s),
        signal,
      );
      recordCache(
        span,
        results.map((r) => r.source),
      );
      const found: Order[] = [];
      const missing: string[] = [];
      results.forEach((r, i) => (r.value ? found.push(r.value) : missing.push(ids[i]!)));
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
      return orderPages.answer(item.key, result.value, (rows) => {
        const page = rows.slice(0, pageSize);
        const last = page[page.length - 1];
        const next = rows.length > pageSize && last ? pageTokens.encode('orders', tokenFilters, { t: last.createdTsNs, o: last.orderId }) : '';
        return { orders: page.map(toOrder), next_page_token: next };
      });
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
      return fillPages.answer(item.key, result.value, (rows) => {
        const page = rows.slice(0, pageSize);
        const last = page[page.length - 1];
        const next = rows.length > pageSize && last ? pageTokens.encode('fills', tokenFilters, { t: last.tsNs, s: last.sourceId, q: last.seq }) : '';
        return { fills: page.map(toFillRecord), next_page_token: next };
      });
    }),

    GetPosition: unary('GetPosition', logger, async (req, signal, span) => {
      const accountId = readId('account_id', req.account_id, MAX_ID_CHARS, true)!;
      const symbol = readId('symbol', req.symbol, MAX_SYMBOL_CHARS, true)!;
      const item: CacheItem = { key: cacheKey('positions.get', { account_id: accountId, symbol }), tags: [positionTag(accountId, symbol)] };
      const result = await cache.get(KIND.position, item, (s) => positions.getPosition(accountId, symbol, s), signal);
      recordCache(span, [result.source]);
      return positionAnswers.answer(item.key, result.value, toPosition);
    }),
  };
}

/** A bigint field of a (verified) cursor; a token of another format is refused, never a crash. */
function cursorBigInt(value: string): bigint {
  if (!/^\d{1,20}$/.test(value)) throw new InvalidArgumentError('page_token', 'is not a token this service issued for these filters');
  return BigInt(value);
}

/** GetOrder's answer from a cache result: the order, or NOT_FOUND (a cached "not found" too). */
function answerOrder(span: Span, result: Cached<Readonly<Order> | null>, orderId: string): Order {
  recordCache(span, [result.source]);
  if (!result.value) throw new NotFoundError('order', orderId);
  return result.value;
}

/** Span attributes of how the cache answered: `orderflow.cache.hit` (all hits) and counts per source. */
function recordCache(span: Span, sources: readonly CacheSource[]): void {
  if (!span.isRecording()) return;
  if (sources.length === 1) {
    // One read (GetOrder, lists, GetPosition): the counts follow from its source.
    const source = sources[0]!;
    span.setAttributes({
      'orderflow.cache.hit': source === 'hit',
      'orderflow.cache.hits': source === 'hit' ? 1 : 0,
      'orderflow.cache.misses': source === 'miss' ? 1 : 0,
      'orderflow.cache.coalesced': source === 'coalesced' ? 1 : 0,
    });
    return;
  }
  const count = (source: CacheSource) => sources.filter((s) => s === source).length;
  span.setAttributes({
    'orderflow.cache.hit': sources.length > 0 && sources.every((s) => s === 'hit'),
    'orderflow.cache.hits': count('hit'),
    'orderflow.cache.misses': count('miss'),
    'orderflow.cache.coalesced': count('coalesced'),
  });
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
