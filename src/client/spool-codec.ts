import { crc32 } from 'node:zlib';

/**
 * Spool file format (all integers big-endian):
 *
 *   file   := MAGIC record*
 *   MAGIC  := "OFSPOOL1" (8 bytes)
 *   record := length:u32  crc:u32  type:u8  payload[length]
 *
 * `crc` is CRC-32 of the type byte and the payload, so a torn or garbled
 * record is detected. Types: HEADER (UTF-8 source id; first record),
 * EVENT (u64 seq, then the event's protobuf `Event` message bytes — the very
 * bytes that go on the wire), COMMITTED (u64: the source's committed mark;
 * events at or below it need no resend).
 */
export const SPOOL_MAGIC = Buffer.from('OFSPOOL1', 'ascii');

/** Record types. */
export const RecordType = { HEADER: 1, EVENT: 2, COMMITTED: 3 } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

const RECORD_OVERHEAD_BYTES = 9;
/** Larger records are treated as garbage (a gRPC message is at most this big anyway). */
const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** Frames one record. */
export function encodeRecord(type: RecordType, payload: Buffer): Buffer {
  const record = Buffer.allocUnsafe(RECORD_OVERHEAD_BYTES + payload.length);
  record.writeUInt32BE(payload.length, 0);
  record.writeUInt8(type, 8);
  payload.copy(record, RECORD_OVERHEAD_BYTES);
  record.writeUInt32BE(crc32(record.subarray(8)), 4);
  return record;
}

/** An EVENT record for the event `seq` with its `Event` message bytes. */
export function encodeEventRecord(seq: bigint, eventBytes: Buffer): Buffer {
  const record = Buffer.allocUnsafe(RECORD_OVERHEAD_BYTES + 8 + eventBytes.length);
  record.writeUInt32BE(8 + eventBytes.length, 0);
  record.writeUInt8(RecordType.EVENT, 8);
  record.writeBigUInt64BE(seq, RECORD_OVERHEAD_BYTES);
  eventBytes.copy(record, RECORD_OVERHEAD_BYTES + 8);
  record.writeUInt32BE(crc32(record.subarray(8)), 4);
  return record;
}

/** A COMMITTED record for `seq`. */
export function encodeCommittedRecord(seq: bigint): Buffer {
  const payload = Buffer.allocUnsafe(8);
  payload.writeBigUInt64BE(seq, 0);
  return encodeRecord(RecordType.COMMITTED, payload);
}

/** A HEADER record naming the source. */
export function encodeHeaderRecord(sourceId: string): Buffer {
  return encodeRecord(RecordType.HEADER, Buffer.from(sourceId, 'utf8'));
}

/** What a spool file holds. */
export interface DecodedSpool {
  /** Source id of the HEADER record; undefined when the file has none (empty or torn at once). */
  sourceId: string | undefined;
  /** Highest COMMITTED mark recorded (0 when none). */
  committedSeq: bigint;
  /** EVENT records in file order: seq, `Event` bytes, and the whole record (for rewriting). */
  events: { seq: bigint; bytes: Buffer; record: Buffer }[];
  /** Length of the valid prefix; bytes after it are a torn or corrupt tail. */
  validBytes: number;
}

/**
 * Decodes a spool file. Reading stops at the first incomplete or corrupt
 * record: records are only ever appended, so a crash can tear only the tail.
 * Throws when the magic is wrong (not a spool file).
 */
export function decodeSpool(file: Buffer): DecodedSpool {
  const result: DecodedSpool = { sourceId: undefined, committedSeq: 0n, events: [], validBytes: 0 };
  if (file.length === 0) return result;
  if (file.length < SPOOL_MAGIC.length || !file.subarray(0, SPOOL_MAGIC.length).equals(SPOOL_MAGIC)) {
    // A file shorter than the magic that is a prefix of it is a spool torn at creation.
    if (file.length < SPOOL_MAGIC.length && SPOOL_MAGIC.subarray(0, file.length).equals(file)) return result;
    throw new Error('not a spool file (bad magic)');
  }
  let offset = SPOOL_MAGIC.length;
  result.validBytes = offset;
  while (file.length - offset >= RECORD_OVERHEAD_BYTES) {
    const length = file.readUInt32BE(offset);
    if (length > MAX_RECORD_BYTES || file.length - offset - RECORD_OVERHEAD_BYTES < length) break;
    const body = file.subarray(offset + 8, offset + RECORD_OVERHEAD_BYTES + length);
    if (crc32(body) !== file.readUInt32BE(offset + 4)) break;
    const type = body[0];
    const payload = body.subarray(1);
    if (type === RecordType.HEADER) {
      if (result.sourceId !== undefined) break;
      result.sourceId = payload.toString('utf8');
    } else if (type === RecordType.COMMITTED && payload.length === 8) {
      const seq = payload.readBigUInt64BE(0);
      if (seq > result.committedSeq) result.committedSeq = seq;
    } else if (type === RecordType.EVENT && payload.length > 8) {
      const seq = payload.readBigUInt64BE(0);
      // Records are appended in seq order; anything else is not ours.
      const previous = result.events[result.events.length - 1];
      if (seq === 0n || (previous && seq <= previous.seq)) break;
      const record = Buffer.from(file.subarray(offset, offset + RECORD_OVERHEAD_BYTES + length));
      result.events.push({ seq, bytes: record.subarray(RECORD_OVERHEAD_BYTES + 8), record });
    } else {
      break;
    }
    offset += RECORD_OVERHEAD_BYTES + length;
    result.validBytes = offset;
  }
  return result;
}
