/** One schema change. Versions are applied in order, each exactly once. */
export interface Migration {
  /** Strictly increasing, never reused. */
  version: number;
  /** Short snake_case name, recorded with the version. */
  name: string;
  /** SQL run inside the migration transaction. */
  sql: string;
}
