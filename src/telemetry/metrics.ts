import http from 'node:http';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { formatHostPort, type HostPort } from '../config';
import type { Logger } from './logger';

/**
 * The process-wide Prometheus registry. Every module registers its metric
 * families here (named `orderflow_*`, base units, `_total` counters,
 * `_seconds` histograms, low-cardinality labels only).
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'orderflow_' });
// prom-client also exports these sums as gauges named `_total`, which
// `promtool check metrics` rejects (that suffix means counter). The same
// figures are `sum(orderflow_nodejs_active_handles)` etc.
for (const name of ['orderflow_nodejs_active_handles_total', 'orderflow_nodejs_active_requests_total', 'orderflow_nodejs_active_resources_total']) {
  registry.removeSingleMetric(name);
}

/** Serves `/metrics` in the Prometheus text format. */
export class MetricsServer {
  private server: http.Server | undefined;
  private closePromise: Promise<void> | undefined;

  constructor(
    private readonly address: HostPort,
    private readonly logger: Logger,
  ) {}

  /** Binds and returns the port. */
  async start(): Promise<number> {
    const server = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
        registry.metrics().then(
          (body) => {
            res.writeHead(200, { 'content-type': registry.contentType });
            res.end(body);
          },
          (err: unknown) => {
            this.logger.error({ err }, 'metrics collection failed');
            res.writeHead(500).end();
          },
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.address.port, this.address.host, () => resolve());
    });
    const port = (server.address() as { port: number }).port;
    this.logger.info({ address: formatHostPort({ host: this.address.host, port }) }, 'metrics listening');
    return port;
  }

  /** Stops serving. Idempotent. */
  close(): Promise<void> {
    if (!this.closePromise) {
      const server = this.server;
      this.closePromise = server
        ? new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          })
        : Promise.resolve();
    }
    return this.closePromise;
  }
}
