import * as grpc from '@grpc/grpc-js';
import type { App } from '../../../src/app';
import type { Env } from '../../../src/config';
import type { OrderFlowClient } from '../../../src/generated/orderflow/v1/OrderFlow';
import { startTestApp } from '../../helpers/app';
import { FakeIngest } from '../../helpers/fake-ingest';
import { orderFlowClient } from '../../helpers/grpc';

/** One running service with a raw stub and a fake ingest bound to its hooks. */
export interface ReadHarness {
  app: App;
  client: OrderFlowClient;
  ingest: FakeIngest;
  close(): Promise<void>;
}

/** Starts an App on `url` and waits until its LISTEN connection is up (the cache stores only then). */
export async function startReadHarness(url: string, env: Env = {}, sourceId = 'fake-ingest'): Promise<ReadHarness> {
  const app = await startTestApp(url, env);
  await waitFor(() => app.readPath.listener.state === 'LISTENING', 10_000, 'the invalidation listener to connect');
  const client = orderFlowClient(app.grpcPort);
  return {
    app,
    client,
    ingest: new FakeIngest(app.pool, app.flushHooks, sourceId),
    close: async () => {
      client.close();
      await app.close();
    },
  };
}

/** Result of a unary call: the response or the error, never a throw. */
export interface CallResult<Res> {
  err: grpc.ServiceError | null;
  res: Res | undefined;
}

type UnaryMethod = 'GetOrder' | 'BatchGetOrders' | 'ListOrders' | 'ListFills' | 'GetPosition';

/** Calls a unary read RPC on the raw stub. */
export function call<Res>(client: OrderFlowClient, method: UnaryMethod, request: object, deadlineMs = 10_000): Promise<CallResult<Res>> {
  return new Promise((resolve) => {
    const fn = (client[method] as unknown as (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void).bind(client);
    fn(request, { deadline: Date.now() + deadlineMs }, (err, res) => resolve({ err, res }));
  });
}

/** Calls and expects success. */
export async function ok<Res>(client: OrderFlowClient, method: UnaryMethod, request: object): Promise<Res> {
  const { err, res } = await call<Res>(client, method, request);
  if (err) throw new Error(`${method} failed: ${grpc.status[err.code]} ${err.details}`);
  return res!;
}

/** Polls `predicate` until it holds or `timeoutMs` passes (then throws, naming what was awaited). */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
