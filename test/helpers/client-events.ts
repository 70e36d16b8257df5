import type { IngestEventInput } from '../../src/client';

/** A deterministic, valid fill for index `i` (fill id `f-<i>`, order `o-<i % 100>`). */
export function fillEvent(i: number, sourceTag = 's'): IngestEventInput {
  return {
    fill: {
      fill_id: `${sourceTag}-f-${i}`,
      order_id: `${sourceTag}-o-${i % 100}`,
      account_id: 'acc-1',
      symbol: 'AAPL',
      side: i % 2 === 0 ? 1 : 2,
      price: `${100 + (i % 50)}.25`,
      qty: `${1 + (i % 10)}`,
      ts_ns: (1_700_000_000_000_000_000n + BigInt(i)).toString(),
      fee: '0.01',
      venue: 'XNAS',
    },
  };
}

/** A deterministic, valid order event for index `i`. */
export function orderEvent(i: number, sourceTag = 's'): IngestEventInput {
  return {
    order: {
      order_id: `${sourceTag}-o-${i}`,
      account_id: 'acc-1',
      symbol: 'MSFT',
      side: 1,
      order_type: 2,
      event_type: 1,
      price: '410.5',
      qty: '10',
      time_in_force: 1,
      ts_ns: (1_700_000_000_000_000_000n + BigInt(i)).toString(),
      client_order_id: `c-${i}`,
    },
  };
}

/** Alternates fills and order events. */
export function mixedEvent(i: number, sourceTag = 's'): IngestEventInput {
  return i % 3 === 0 ? orderEvent(i, sourceTag) : fillEvent(i, sourceTag);
}
