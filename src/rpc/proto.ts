import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/orderflow';
import type { OrderFlowDefinition } from '../generated/orderflow/v1/OrderFlow';

/** Absolute path of the public contract. */
export const ORDERFLOW_PROTO_PATH = path.resolve(__dirname, '../../../proto/orderflow/v1/orderflow.proto');

/**
 * Loader options shared by server and client. `longs: String` keeps uint64
 * seqs and nanosecond timestamps exact (converted to bigint at the edge);
 * enums stay numbers, the values stored in the database.
 */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
};

let cached: { packageDefinition: protoLoader.PackageDefinition; proto: ProtoGrpcType } | undefined;

/** Loads the contract once per process. */
export function loadOrderflowProto(): { packageDefinition: protoLoader.PackageDefinition; proto: ProtoGrpcType } {
  if (!cached) {
    const packageDefinition = protoLoader.loadSync(ORDERFLOW_PROTO_PATH, PROTO_LOADER_OPTIONS);
    const proto = grpc.loadPackageDefinition(packageDefinition) as unknown as ProtoGrpcType;
    cached = { packageDefinition, proto };
  }
  return cached;
}

/** The OrderFlow service definition (method paths, serializers). */
export function orderFlowServiceDefinition(): OrderFlowDefinition {
  return loadOrderflowProto().proto.orderflow.v1.OrderFlow.service;
}

/** Fully qualified service name, as health and reflection report it. */
export const ORDERFLOW_SERVICE_NAME = 'orderflow.v1.OrderFlow';
