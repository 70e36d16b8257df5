/**
 * The OrderFlow TypeScript client: typed read calls and exactly-once ingest
 * producers. See the README section "TypeScript client".
 */
export { createOrderFlowClient, OrderFlowClient, type CallOptions, type ClientState } from './client';
export { IngestProducer } from './producer';
export type { ConnectionState, ProducerState, ProducerStats } from './producer-types';
export type { IngestProducerOptions, OrderFlowClientOptions, ProducerWarning } from './options';
export type { SpoolFsync, SpoolOptions, SpoolStats } from './spool';
export type { BackoffOptions } from './backoff';
export type { EventOutcome, EventStatus, FillInput, IngestEventInput, OrderEventInput, SendReceipt, TimestampNs } from './events';
export {
  ClientAbortedError,
  ClientClosedError,
  ClientOptionsError,
  EventRejectedError,
  FencedError,
  InvalidEventError,
  InvalidSequenceError,
  OrderFlowClientError,
  ProducerClosedError,
  ProtocolError,
  SpoolError,
} from './errors';
export { OrderEventType } from '../generated/orderflow/v1/OrderEventType';
export { OrderStatus } from '../generated/orderflow/v1/OrderStatus';
export { OrderType } from '../generated/orderflow/v1/OrderType';
export { RejectCode } from '../generated/orderflow/v1/RejectCode';
export { Side } from '../generated/orderflow/v1/Side';
export { TimeInForce } from '../generated/orderflow/v1/TimeInForce';
export type { Order__Output as Order } from '../generated/orderflow/v1/Order';
export type { FillRecord__Output as FillRecord } from '../generated/orderflow/v1/FillRecord';
export type { Position__Output as Position } from '../generated/orderflow/v1/Position';
export type { BatchGetOrdersRequest } from '../generated/orderflow/v1/BatchGetOrdersRequest';
export type { BatchGetOrdersResponse__Output as BatchGetOrdersResponse } from '../generated/orderflow/v1/BatchGetOrdersResponse';
export type { BustFillsRequest } from '../generated/orderflow/v1/BustFillsRequest';
export type { BustFillsResponse__Output as BustFillsResponse } from '../generated/orderflow/v1/BustFillsResponse';
export type { GetOrderRequest } from '../generated/orderflow/v1/GetOrderRequest';
export type { GetPositionRequest } from '../generated/orderflow/v1/GetPositionRequest';
export type { ListFillsRequest } from '../generated/orderflow/v1/ListFillsRequest';
export type { ListFillsResponse__Output as ListFillsResponse } from '../generated/orderflow/v1/ListFillsResponse';
export type { ListOrdersRequest } from '../generated/orderflow/v1/ListOrdersRequest';
export type { ListOrdersResponse__Output as ListOrdersResponse } from '../generated/orderflow/v1/ListOrdersResponse';
