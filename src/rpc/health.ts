import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Server } from '@grpc/grpc-js';
import { Gauge } from 'prom-client';
import type { Logger } from '../telemetry/logger';
import { registry } from '../telemetry/metrics';
import { ORDERFLOW_SERVICE_NAME } from './proto';

export { protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';

/** 1 while the last health probe reached the database, else 0 (the "database unreachable" alert). */
const databaseUp = new Gauge({
  name: 'orderflow_database_up',
  help: '1 when the last health probe of the database succeeded, 0 when it failed.',
  registers: [registry],
});

/** Options of the health reporter. */
export interface HealthReporterOptions {
  /** Resolves when the database answers; rejects otherwise. */
  probe: () => Promise<void>;
  /** How often the database is probed, ms. */
  intervalMs: number;
  logger: Logger;
}

/**
 * grpc.health.v1 for "" (the whole server) and orderflow.v1.OrderFlow:
 * SERVING while the database answers its probe, NOT_SERVING when it does not
 * and, for good, once shutdown began.
 */
export class HealthReporter {
  private readonly impl = new HealthImplementation({ '': 'NOT_SERVING', [ORDERFLOW_SERVICE_NAME]: 'NOT_SERVING' });
  private timer: NodeJS.Timeout | undefined;
  private current: ServingStatus = 'NOT_SERVING';
  private shuttingDown = false;
  private probing = false;

  constructor(private readonly options: HealthReporterOptions) {}

  addToServer(server: Server): void {
    this.impl.addToServer(server);
  }

  get status(): ServingStatus {
    return this.current;
  }

  /** Probes once now, then on the interval. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Runs one probe and updates the status. */
  async check(): Promise<ServingStatus> {
    if (this.shuttingDown || this.probing) return this.current;
    this.probing = true;
    try {
      await this.options.probe();
      databaseUp.set(1);
      this.set('SERVING');
    } catch (err) {
      databaseUp.set(0);
      if (this.current === 'SERVING') this.options.logger.warn({ err: (err as Error).message }, 'database probe failed; health NOT_SERVING');
      this.set('NOT_SERVING');
    } finally {
      this.probing = false;
    }
    return this.current;
  }

  /** NOT_SERVING from now on. */
  shutdown(): void {
    this.shuttingDown = true;
    if (this.timer) clearInterval(this.timer);
    this.set('NOT_SERVING');
  }

  private set(next: ServingStatus): void {
    if (this.shuttingDown && next === 'SERVING') return;
    this.current = next;
    this.impl.setStatus('', next);
    this.impl.setStatus(ORDERFLOW_SERVICE_NAME, next);
  }
}
