import type { Migration } from './migration';
import { migration001 } from './001-initial';

export type { Migration } from './migration';

/** Every migration, in version order. Append only. */
export const migrations: readonly Migration[] = [migration001];
