import { startTestCluster, stopTestCluster } from './postgres';

/**
 * Mocha root hooks: one throwaway PostgreSQL for the whole run, started on a
 * free port before the first test and removed after the last.
 */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120_000);
    await startTestCluster();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stopTestCluster();
  },
};
