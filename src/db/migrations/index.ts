import type { Migration } from './migration';
import { migration001 } from './001-initial';
import { migration003 } from './003-read-path';
import { migration004 } from './004-fill-busts';
import { migration005 } from './005-seal-window';

export type { Migration } from './migration';

/** Every migration, in version order. Append only. Version 2 is the ingest path's (issue #4). */
export const migrations: readonly Migration[] = [migration001, migration003, migration004, migration005];
