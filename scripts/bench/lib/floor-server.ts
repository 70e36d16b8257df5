/**
 * The floor of the read scenarios: a trivial grpc-js server, run as its own
 * process, whose GetOrder returns one constant Order. Same proto, same loader
 * options and same server options as orderflow, so the difference between
 * the two is what orderflow's read path adds to gRPC's own cost.
 *
 * Started by the benchmark with GRPC_ADDRESS=127.0.0.1:<port>; SIGTERM stops it.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Order } from '../../../src/generated/orderflow/v1/Order';
import { orderFlowServiceDefinition } from '../../../src/rpc/proto';

/** The constant answer: a realistic, fully populated order. */
export const FLOOR_ORDER: Order = {
  order_id: 'SEED-O000000042',
  client_order_id: 'cl-7f3a2c9e01b4',
  account_id: 'ACCT-000042',
  symbol: 'AAPL',
  side: 1,
  order_type: 2,
  time_in_force: 1,
  status: 3,
  price: '189.2500',
  qty: '500',
  filled_qty: '200',
  avg_fill_price: '189.2500',
  created_ts_ns: '1710000000123456789',
  updated_ts_ns: '1710000000223456789',
};

function main(): void {
  const address = process.env.GRPC_ADDRESS ?? '127.0.0.1:0';
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.max_send_message_length': 16 * 1024 * 1024 });
  const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'floor server' });
  server.addService(orderFlowServiceDefinition(), {
    GetOrder: (_call: grpc.ServerUnaryCall<unknown, Order>, callback: grpc.sendUnaryData<Order>) => callback(null, FLOOR_ORDER),
    Ingest: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.destroy(Object.assign(new Error('floor server'), { code: grpc.status.UNIMPLEMENTED })),
    BatchGetOrders: unimplemented,
    ListOrders: unimplemented,
    ListFills: unimplemented,
    GetPosition: unimplemented,
    BustFills: unimplemented,
  } as unknown as grpc.UntypedServiceImplementation);
  new HealthImplementation({ '': 'SERVING' }).addToServer(server);
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      process.stderr.write(`floor server cannot bind ${address}: ${err.message}\n`);
      process.exit(1);
    }
  });
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) main();
