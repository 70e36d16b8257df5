import { OrderflowError } from '../errors';

/** One bad setting: the env var name and what is wrong with its value. */
export interface ConfigProblem {
  key: string;
  problem: string;
}

/** Start-up configuration is invalid. Lists every bad key at once. */
export class ConfigError extends OrderflowError {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super('CONFIG', `Invalid configuration:\n${problems.map((p) => `  ${p.key}: ${p.problem}`).join('\n')}`);
  }
}
