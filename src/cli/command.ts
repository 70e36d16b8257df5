import pino from 'pino';
import { ConfigError, loadConfig, type Config } from '../config';
import { InvalidArgumentError } from '../errors';
import { createLogger, type Logger } from '../telemetry/logger';

/** Exit codes shared by the batch command-line tools (README "Batch operations"). */
export const EXIT_OK = 0;
/** The run failed or stopped on an error; what committed before stays committed. */
export const EXIT_FAILED = 1;
/** Bad arguments or configuration; nothing was done. */
export const EXIT_USAGE = 2;
/** The import finished but some rows were invalid (they are quarantined). */
export const EXIT_ROWS_QUARANTINED = 3;
/** Interrupted by SIGINT/SIGTERM; rerun to continue. */
export const EXIT_INTERRUPTED = 130;

/** What a command body receives. */
export interface CommandContext {
  config: Config;
  /** JSON logs on stderr, so stdout carries only the summary. */
  logger: Logger;
  /** Aborted by the first SIGINT/SIGTERM. */
  signal: AbortSignal;
}

/**
 * Runs a CLI command: loads the config, logs to stderr, turns the first
 * SIGINT/SIGTERM into an abort (the command stops cleanly and reports what it
 * did) and a second one into an immediate exit, and exits with the code the
 * body returns. Bad arguments and config exit EXIT_USAGE with the usage text.
 */
export async function runCommand(name: string, usage: string, body: (ctx: CommandContext) => Promise<number>): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(EXIT_USAGE);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel, pino.destination({ fd: 2, sync: true }));
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      process.stderr.write(`\n${name}: ${signal} again, exiting now\n`);
      process.exit(EXIT_INTERRUPTED);
    }
    process.stderr.write(`\n${name}: ${signal}: stopping after the running batches (again to force)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code: number;
  try {
    code = await body({ config, logger, signal: controller.signal });
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      process.stderr.write(`${name}: ${err.message}\n\n${usage}`);
      code = EXIT_USAGE;
    } else {
      const cause = (err as { cause?: Error }).cause;
      process.stderr.write(`${name}: ${(err as Error).message}${cause?.message ? ` (${cause.message})` : ''}\n`);
      logger.error({ err }, `${name} failed`);
      code = EXIT_FAILED;
    }
  }
  logger.flush();
  process.exit(code);
}
