import * as grpc from '@grpc/grpc-js';

/**
 * Thrown by a scenario that cannot run on this build (the RPC answers
 * UNIMPLEMENTED, psql is missing): reported as "not available", not a crash.
 */
export class ScenarioUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`Scenario not available: ${reason}`);
    this.name = 'ScenarioUnavailableError';
  }
}

/** True when `err` is a gRPC error with status UNIMPLEMENTED. */
export function isUnimplemented(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === grpc.status.UNIMPLEMENTED;
}
