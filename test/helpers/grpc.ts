import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import type { OrderFlowClient } from '../../src/generated/orderflow/v1/OrderFlow';
import { HEALTH_PROTO_PATH } from '../../src/rpc/health';
import { loadOrderflowProto, PROTO_LOADER_OPTIONS } from '../../src/rpc/proto';

/** A raw generated OrderFlow stub on loopback. Close it with `.close()`. */
export function orderFlowClient(port: number): OrderFlowClient {
  const { proto } = loadOrderflowProto();
  return new proto.orderflow.v1.OrderFlow(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

interface HealthClient extends grpc.Client {
  Check(req: { service: string }, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string | number }) => void): void;
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string | number }>;
}

/** A grpc.health.v1 client. */
export function healthClient(port: number): HealthClient {
  const def = protoLoader.loadSync(HEALTH_PROTO_PATH, { ...PROTO_LOADER_OPTIONS, enums: String });
  const loaded = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: new (addr: string, creds: grpc.ChannelCredentials) => HealthClient } } } };
  return new loaded.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** Health status of `service` ('' = whole server), or the gRPC error code when the call fails. */
export function checkHealth(port: number, service = '', timeoutMs = 2_000): Promise<string> {
  const client = healthClient(port);
  return new Promise<string>((resolve) => {
    client.Check({ service }, { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      resolve(err ? `ERROR:${grpc.status[err.code]}` : String(res?.status));
    });
  });
}

/** Polls health until it equals `want` or the timeout passes; returns the last status seen. */
export async function waitForHealth(port: number, want: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await checkHealth(port);
    if (last === want) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

/** Lists services through server reflection (`v1` or `v1alpha`). */
export async function listServicesByReflection(port: number, version: 'v1' | 'v1alpha'): Promise<string[]> {
  const protoFile = path.join(path.dirname(require.resolve('@grpc/reflection')), '..', 'proto', 'grpc', 'reflection', version, 'reflection.proto');
  const def = protoLoader.loadSync(protoFile, PROTO_LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, { list_services_response?: { service: { name: string }[] } }> } }> };
  };
  const client = new loaded.grpc.reflection[version]!.ServerReflection(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on('data', (msg) => {
        resolve((msg.list_services_response?.service ?? []).map((s: { name: string }) => s.name).sort());
        call.end();
      });
      call.on('error', reject);
      call.write({ host: '', list_services: '*' });
    });
  } finally {
    client.close();
  }
}
