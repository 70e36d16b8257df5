import type { CopySink, QueryOptions } from '../types';
import { CopyTextEncoder } from './encoder';

/** Largest piece handed to the COPY stream at once, bytes (keeps socket writes moderate). */
export const COPY_CHUNK_BYTES = 256 * 1024;

/**
 * The encoded rows of one table for one COPY, with each row's end offset, so
 * that any subset of rows can be sent again without re-encoding (fenced or
 * already-committed rows left out, halves of a batch being bisected).
 */
export class CopyRowSet {
  readonly encoder: CopyTextEncoder;
  private readonly rowEnds: number[] = [];

  constructor(initialBytes?: number) {
    this.encoder = new CopyTextEncoder(initialBytes);
  }

  /** Rows encoded so far. */
  get rowCount(): number {
    return this.rowEnds.length;
  }

  /** Bytes encoded so far. */
  get byteLength(): number {
    return this.encoder.length;
  }

  /** Ends the row being encoded. */
  endRow(): void {
    this.encoder.endRow();
    this.rowEnds.push(this.encoder.length);
  }

  /** Bytes of row `index` without its newline. */
  rowBytes(index: number): Buffer {
    const start = index === 0 ? 0 : this.rowEnds[index - 1]!;
    return this.encoder.view(start, this.rowEnds[index]! - 1);
  }

  /** Every row, as chunks of at most COPY_CHUNK_BYTES (views, no copy). */
  allChunks(): Buffer[] {
    return splitChunks(this.encoder.view(), []);
  }

  /** The rows at `indices` (ascending), consecutive rows merged into one view. */
  chunksFor(indices: readonly number[]): Buffer[] {
    const chunks: Buffer[] = [];
    let runStart = -1;
    let runEnd = -1;
    for (const index of indices) {
      const start = index === 0 ? 0 : this.rowEnds[index - 1]!;
      const end = this.rowEnds[index]!;
      if (start === runEnd) {
        runEnd = end;
      } else {
        if (runStart >= 0) splitChunks(this.encoder.view(runStart, runEnd), chunks);
        runStart = start;
        runEnd = end;
      }
    }
    if (runStart >= 0) splitChunks(this.encoder.view(runStart, runEnd), chunks);
    return chunks;
  }

  /** Forgets all rows, keeps the buffer for the next batch. */
  reset(): void {
    this.encoder.reset();
    this.rowEnds.length = 0;
  }
}

function splitChunks(view: Buffer, into: Buffer[]): Buffer[] {
  for (let offset = 0; offset < view.length; offset += COPY_CHUNK_BYTES) {
    into.push(view.subarray(offset, Math.min(view.length, offset + COPY_CHUNK_BYTES)));
  }
  return into;
}

/**
 * Runs `COPY … FROM STDIN` (`sql`) on `sink` with the given chunks; the sink
 * streams them through `stream/promises.pipeline` into pg-copy-streams.
 * Resolves with the row count the server reports.
 */
export function copyChunks(sink: CopySink, options: QueryOptions, sql: string, chunks: readonly Buffer[]): Promise<number> {
  return sink.copyFrom(options, sql, chunks);
}
