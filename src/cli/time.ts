import { InvalidArgumentError } from '../errors';

const NS_PER_MS = 1_000_000n;
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * Parses a cutoff into nanoseconds since the epoch, exactly: `YYYY-MM-DD`
 * (midnight UTC) or an ISO 8601 date-time with `Z` or an offset and up to
 * nine fractional digits. A date-time without a zone is refused (local time
 * is ambiguous for a delete), and so is a cutoff after `nowMs`: a retention
 * purge of the future is always a typo. Throws InvalidArgumentError.
 */
export function parseCutoff(text: string, nowMs: number = Date.now(), field = '--before'): bigint {
  const value = text.trim();
  let ns: bigint;
  const dateOnly = DATE_ONLY.exec(value);
  const dateTime = DATE_TIME.exec(value);
  if (dateOnly) {
    ns = utcNs(field, value, +dateOnly[1]!, +dateOnly[2]!, +dateOnly[3]!, 0, 0, 0);
  } else if (dateTime) {
    const [, y, mo, d, h, mi, s, fraction, zone] = dateTime;
    ns = utcNs(field, value, +y!, +mo!, +d!, +h!, +mi!, s === undefined ? 0 : +s);
    ns += BigInt((fraction ?? '').padEnd(9, '0') || '0');
    ns -= offsetNs(zone!);
  } else {
    throw new InvalidArgumentError(field, `expected YYYY-MM-DD or an ISO 8601 date-time with a zone (2024-01-31T00:00:00Z), got ${JSON.stringify(text)}`);
  }
  if (ns <= 0n) throw new InvalidArgumentError(field, 'must be after 1970-01-01T00:00:00Z');
  if (ns > BigInt(nowMs) * NS_PER_MS) throw new InvalidArgumentError(field, `${value} is in the future`);
  return ns;
}

/** Formats nanoseconds since the epoch as ISO 8601 with nine fractional digits. */
export function formatNs(ns: bigint): string {
  const ms = ns / NS_PER_MS;
  const iso = new Date(Number(ms)).toISOString();
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${fraction}Z`;
}

function utcNs(field: string, text: string, y: number, mo: number, d: number, h: number, mi: number, s: number): bigint {
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Date.UTC rolls 2024-02-30 over to March; a cutoff must mean what it says.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    throw new InvalidArgumentError(field, `${JSON.stringify(text)} is not a valid date`);
  }
  return BigInt(ms) * NS_PER_MS;
}

function offsetNs(zone: string): bigint {
  if (zone.toUpperCase() === 'Z') return 0n;
  const sign = zone.startsWith('-') ? -1n : 1n;
  const digits = zone.slice(1).replace(':', '');
  const minutes = BigInt(Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2)));
  return sign * minutes * 60n * 1_000_000_000n;
}
