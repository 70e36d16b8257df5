/**
 * Exact decimal conversion of unsigned 64-bit values given as 32-bit halves
 * (as the protobuf wire format yields them), without BigInt.
 */

const TWO_POW_32 = 4_294_967_296;

/** `hi·2³² + lo = high·10⁷ + low`, both exact doubles; `low` < 10⁷. Reused: read it at once. */
export interface Uint64Parts {
  high: number;
  low: number;
}

const parts: Uint64Parts = { high: 0, low: 0 };

/**
 * Splits hi·2³² + lo into parts whose decimal digits are the value's
 * (`low` padded to 7 digits when `high` > 0). Values below 2⁵³ come back
 * whole in `high` with `low` = -1: print `high` alone.
 */
export function splitUint64(lo: number, hi: number): Uint64Parts {
  if (hi <= 0x1fffff) {
    parts.high = hi * TWO_POW_32 + lo;
    parts.low = -1;
    return parts;
  }
  // Regroup 24+24+16 bits into base-10⁷ digits so every product stays exact in a double.
  const low = lo & 0xffffff;
  const mid = ((lo >>> 24) | (hi << 8)) & 0xffffff;
  const high = hi >>> 16;
  let digitA = low + mid * 6_777_216 + high * 6_710_656;
  let digitB = mid + high * 8_147_497;
  let digitC = high * 2;
  if (digitA >= 10_000_000) {
    digitB += Math.floor(digitA / 10_000_000);
    digitA %= 10_000_000;
  }
  if (digitB >= 10_000_000) {
    digitC += Math.floor(digitB / 10_000_000);
    digitB %= 10_000_000;
  }
  // digitC < 2·10⁵, so digitC·10⁷ + digitB is exact in a double.
  parts.high = digitC * 10_000_000 + digitB;
  parts.low = digitA;
  return parts;
}
