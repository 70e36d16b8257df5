// Only configuration and logging are imported statically: tracing starts
// before the rest of the service is loaded, so nothing it does at load time
// escapes the tracer. Everything else is required after startTracing.
import type { App as AppClass } from './app';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './telemetry/logger';

/** Exit code when start-up fails (bad config, database unreachable). */
const EXIT_STARTUP_FAILED = 1;
/** Exit code when shutdown had to be forced. */
const EXIT_FORCED = 2;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`orderflow: ${err.message}\n`);
      process.exit(EXIT_STARTUP_FAILED);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (config.otel.tracingEnabled) {
    // Loaded only when on: with OTEL_TRACES_EXPORTER=none no SDK module is even read.
    (require('./telemetry/sdk') as typeof import('./telemetry/sdk')).startTracing(config.otel, logger);
  }
  // require, not import(): TypeScript's node16 mode keeps import() as an ESM import.
  const { App } = require('./app') as { App: typeof AppClass };
  const app = new App(config, logger);

  // Registered before start so a signal during start-up still stops cleanly.
  const onSignal = (signal: NodeJS.Signals): void => {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    logger.info({ signal }, 'shutting down');
    // A second signal, or the deadline, forces the exit.
    const force = (reason: string) => {
      logger.error({ reason }, 'forced exit');
      logger.flush();
      process.exit(EXIT_FORCED);
    };
    process.once('SIGTERM', () => force('second signal'));
    process.once('SIGINT', () => force('second signal'));
    setTimeout(() => force('shutdown deadline passed'), config.shutdownGraceMs + 10_000).unref();
    app.close().then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        logger.flush();
        process.exit(EXIT_FORCED);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    await app.start();
    logger.info({ grpcPort: app.grpcPort, metricsPort: app.metricsPort }, 'orderflow ready');
  } catch (err) {
    logger.error({ err }, 'start-up failed');
    logger.flush();
    process.exit(EXIT_STARTUP_FAILED);
  }
}

void main();
