import { App } from '../../src/app';
import { loadConfig, type Env } from '../../src/config';
import { silentLogger } from '../../src/telemetry/logger';

/** Starts an in-process App on `databaseUrl`, gRPC on a free loopback port, metrics off. */
export async function startTestApp(databaseUrl: string, env: Env = {}): Promise<App> {
  const config = loadConfig({ DATABASE_URL: databaseUrl, GRPC_ADDRESS: '127.0.0.1:0', METRICS_ADDRESS: 'off', SHUTDOWN_GRACE_MS: '3000', POOL_MIN: '0', ...env });
  const app = new App(config, silentLogger);
  await app.start();
  return app;
}
