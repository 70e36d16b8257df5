import { expect } from 'chai';
import { accountTag, ANY_CHANGE_TAG, orderTag, positionTag, tagsOfChangeSet } from '../../../src/store/cache-tags';
import { accountSymbolKey, type ChangeSet } from '../../../src/store/change-set';
import { decodeInvalidation, encodeInvalidation } from '../../../src/store/invalidation';

function changeSet(orders: string[], accounts: string[], pairs: [string, string][]): ChangeSet {
  return { orderIds: new Set(orders), accountIds: new Set(accounts), accountSymbols: new Set(pairs.map(([a, s]) => accountSymbolKey(a, s))) };
}

describe('store/invalidation payloads', () => {
  it('round-trips a change set into the same tags the local invalidation uses', () => {
    const changes = changeSet(['o-1', 'ördér-2'], ['acct-1'], [['acct-1', 'AAPL']]);
    const payload = encodeInvalidation('inst-1', changes);
    const decoded = decodeInvalidation(payload);
    expect(decoded.instanceId).to.equal('inst-1');
    expect(decoded.tags).to.have.members(tagsOfChangeSet(changes));
    expect(decoded.tags).to.have.members([orderTag('o-1'), orderTag('ördér-2'), accountTag('acct-1'), positionTag('acct-1', 'AAPL'), ANY_CHANGE_TAG]);
  });

  it('falls back to "drop everything" when the payload would reach 8,000 bytes', () => {
    const big = changeSet(
      Array.from({ length: 300 }, (_, i) => `order-${i}-${'x'.repeat(20)}`),
      ['a'],
      [],
    );
    const payload = encodeInvalidation('inst-1', big);
    expect(Buffer.byteLength(payload)).to.be.below(8_000);
    expect(decodeInvalidation(payload)).to.deep.equal({ instanceId: 'inst-1', tags: undefined });
    // Multi-byte characters count as bytes, not characters.
    const wide = changeSet(Array.from({ length: 700 }, (_, i) => `€${i}`), [], []);
    expect(Buffer.byteLength(encodeInvalidation('i', wide))).to.be.below(8_000);
  });

  it('keeps every id up to the last payload that fits, whatever the early size estimate says', () => {
    // Grow a change set one order at a time: the last set that encodes exactly must be just under the limit.
    const orders: string[] = [];
    let last = '';
    for (let i = 0; ; i++) {
      orders.push(`order-${String(i).padStart(6, '0')}`);
      const payload = encodeInvalidation('inst-1', changeSet(orders, ['acct-1'], [['acct-1', 'AAPL']]));
      if (decodeInvalidation(payload).tags === undefined) break;
      last = payload;
    }
    const size = Buffer.byteLength(last);
    expect(size).to.be.below(8_000);
    // One more 12-character id (15 bytes in JSON) would have fitted if the set were cut early.
    expect(size).to.be.above(8_000 - 16);
    expect(decodeInvalidation(last).tags).to.include(orderTag(orders[orders.length - 2]!));
  });

  it('decodes anything malformed as "drop everything"', () => {
    for (const bad of ['', 'not json', '[]', '{"v":2,"i":"x","o":[],"a":[],"p":[]}', '{"v":1,"i":"x","o":[1],"a":[],"p":[]}', '{"v":1,"i":"x","o":[],"a":[],"p":[["only-one"]]}']) {
      expect(decodeInvalidation(bad).tags, bad).to.equal(undefined);
    }
  });

  it('an empty change set has no tags', () => {
    expect(tagsOfChangeSet(changeSet([], [], []))).to.deep.equal([]);
  });
});
