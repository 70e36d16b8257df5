import * as grpc from '@grpc/grpc-js';
import { orderFlowClient } from './grpc';

/**
 * Says Hello on the server's Ingest and reports how it answered: 'WELCOME',
 * or the gRPC status name that ended the call (UNIMPLEMENTED while the
 * Ingest RPC is not built; DEADLINE_EXCEEDED when nothing answered).
 */
export async function probeIngest(port: number, timeoutMs = 5_000): Promise<string> {
  const client = orderFlowClient(port);
  try {
    return await new Promise<string>((resolve) => {
      const call = client.Ingest({ deadline: Date.now() + timeoutMs });
      call.on('data', (msg: { welcome?: unknown }) => {
        if (msg.welcome) {
          resolve('WELCOME');
          call.cancel();
        }
      });
      call.on('error', (err: grpc.ServiceError) => resolve(grpc.status[err.code] ?? String(err.code)));
      call.write({ hello: { source_id: `probe-${process.pid}-${Date.now()}` } });
    });
  } finally {
    client.close();
  }
}

/** Says whether a read RPC is served: the status name of GetOrder for an unknown id ('NOT_FOUND' when it is built). */
export async function probeReads(port: number, timeoutMs = 5_000): Promise<string> {
  const client = orderFlowClient(port);
  try {
    return await new Promise<string>((resolve) => {
      client.GetOrder({ order_id: 'probe-unknown-order' }, { deadline: Date.now() + timeoutMs }, (err) => resolve(err ? (grpc.status[err.code] ?? String(err.code)) : 'OK'));
    });
  } finally {
    client.close();
  }
}
