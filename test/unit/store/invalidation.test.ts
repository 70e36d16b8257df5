import { expect } from 'chai';
import { tagHash } from '../../../src/db/tag-hash';
import { accountTag, accountTagHash, ANY_CHANGE_TAG, ANY_CHANGE_TAG_HASH, orderTag, orderTagHash, positionTag, positionTagHash } from '../../../src/store/cache-tags';
import { ChangeSetBuilder, MAX_NOTIFY_PAYLOAD_BYTES, type ChangedIds } from '../../../src/store/change-set';
import { decodeInvalidation, encodeInvalidation, invalidationPrefix } from '../../../src/store/invalidation';

function ids(orders: string[], accounts: string[], pairs: [string, string][]): ChangedIds {
  const symbolsByAccount = new Map<string, Set<string>>();
  for (const [a, s] of pairs) symbolsByAccount.set(a, (symbolsByAccount.get(a) ?? new Set()).add(s));
  return { orderIds: new Set(orders), accountIds: new Set(accounts), symbolsByAccount };
}

describe('store/cache-tags hashes', () => {
  const samples = ['', 'o-1', 'ördér-2', 'acct-1', 'BTC-USD', '😀 emoji', 'x'.repeat(300)];

  it("hash a tag's parts exactly as the whole tag hashes", () => {
    for (const a of samples) {
      expect(orderTagHash(a), a).to.equal(tagHash(orderTag(a)));
      expect(accountTagHash(a), a).to.equal(tagHash(accountTag(a)));
      for (const b of samples) expect(positionTagHash(a, b), `${a}/${b}`).to.equal(tagHash(positionTag(a, b)));
    }
    expect(ANY_CHANGE_TAG_HASH).to.equal(tagHash(ANY_CHANGE_TAG));
  });

  it('are small non-negative integers that tell the kinds and the ids apart', () => {
    const hashes = samples.flatMap((a) => [orderTagHash(a), accountTagHash(a), positionTagHash(a, 'AAPL')]);
    for (const h of hashes) expect(Number.isInteger(h) && h >= 0 && h < 2 ** 30, String(h)).to.equal(true);
    expect(new Set(hashes).size).to.equal(hashes.length);
    // The separator matters: ("ab", "c") and ("a", "bc") are different positions.
    expect(positionTagHash('ab', 'c')).to.not.equal(positionTagHash('a', 'bc'));
  });
});

describe('store/change-set ChangeSetBuilder', () => {
  it('collects the tag hashes and the ids of what was added', () => {
    const b = new ChangeSetBuilder();
    expect(b.build()).to.deep.equal({ tagHashes: [], ids: { orderIds: new Set(), accountIds: new Set(), symbolsByAccount: new Map() } });
    b.addOrderEvent('o-1', 'acct-1');
    b.addFill('o-2', 'acct-2', 'AAPL');
    b.addFill('o-2', 'acct-2', 'MSFT');
    const changes = b.build();
    expect(b.build(), 'the same object until another event is added').to.equal(changes);
    expect(new Set(changes.tagHashes)).to.deep.equal(
      new Set([orderTag('o-1'), accountTag('acct-1'), orderTag('o-2'), accountTag('acct-2'), positionTag('acct-2', 'AAPL'), positionTag('acct-2', 'MSFT'), ANY_CHANGE_TAG].map(tagHash)),
    );
    expect(changes.ids).to.deep.equal(ids(['o-1', 'o-2'], ['acct-1', 'acct-2'], [['acct-2', 'AAPL'], ['acct-2', 'MSFT']]));
    b.addFill('o-3', 'acct-1', 'AAPL');
    expect(b.build().tagHashes).to.include(orderTagHash('o-3'));
  });

  it('drops the ids, never the hashes, once they cannot fit in one NOTIFY', () => {
    const b = new ChangeSetBuilder();
    const orders = Array.from({ length: 1_000 }, (_, i) => `order-${String(i).padStart(6, '0')}`);
    for (const o of orders) b.addFill(o, 'acct-1', 'AAPL');
    const changes = b.build();
    expect(changes.ids).to.equal(undefined);
    for (const o of orders) expect(changes.tagHashes).to.include(orderTagHash(o));
    expect(changes.tagHashes).to.include.members([accountTagHash('acct-1'), positionTagHash('acct-1', 'AAPL'), ANY_CHANGE_TAG_HASH]);
    expect(encodeInvalidation('inst-1', changes.ids)).to.equal('{"v":1,"i":"inst-1","all":true}');
  });
});

describe('store/invalidation payloads', () => {
  it('round-trips the ids of a change set into the tags whose hashes the local invalidation uses', () => {
    const b = new ChangeSetBuilder();
    b.addFill('o-1', 'acct-1', 'AAPL');
    b.addOrderEvent('ördér-2', 'acct-1');
    const changes = b.build();
    const decoded = decodeInvalidation(encodeInvalidation('inst-1', changes.ids));
    expect(decoded.instanceId).to.equal('inst-1');
    expect(decoded.tags).to.have.members([orderTag('o-1'), orderTag('ördér-2'), accountTag('acct-1'), positionTag('acct-1', 'AAPL'), ANY_CHANGE_TAG]);
    expect(new Set(decoded.tags!.map(tagHash))).to.deep.equal(new Set(changes.tagHashes));
  });

  it('falls back to "drop everything" when the payload would reach 8,000 bytes', () => {
    const big = ids(
      Array.from({ length: 300 }, (_, i) => `order-${i}-${'x'.repeat(20)}`),
      ['a'],
      [],
    );
    const payload = encodeInvalidation('inst-1', big);
    expect(Buffer.byteLength(payload)).to.be.below(8_000);
    expect(decodeInvalidation(payload)).to.deep.equal({ instanceId: 'inst-1', tags: undefined });
    // Multi-byte characters count as bytes, not characters.
    const wide = ids(Array.from({ length: 700 }, (_, i) => `€${i}`), [], []);
    expect(Buffer.byteLength(encodeInvalidation('i', wide))).to.be.below(8_000);
  });

  it('keeps every id up to the last payload that fits, whatever the builder\'s early size estimate says', () => {
    // Grow a change set one order at a time: the last set that encodes exactly must be just under the limit.
    const b = new ChangeSetBuilder();
    let last = '';
    let lastOrder = '';
    for (let i = 0; ; i++) {
      lastOrder = `order-${String(i).padStart(6, '0')}`;
      b.addFill(lastOrder, 'acct-1', 'AAPL');
      const payload = encodeInvalidation('inst-1', b.build().ids);
      if (decodeInvalidation(payload).tags === undefined) break;
      last = payload;
    }
    const size = Buffer.byteLength(last);
    expect(size).to.be.at.most(MAX_NOTIFY_PAYLOAD_BYTES);
    // One more 12-character id (15 bytes in JSON) would have fitted if the set were cut early.
    expect(size).to.be.above(8_000 - 16);
    expect(decodeInvalidation(last).tags).to.not.include(orderTag(lastOrder));
  });

  it("begins every payload with its instance's prefix, which no other instance's payload has", () => {
    const b = new ChangeSetBuilder();
    b.addFill('o-1', 'acct-1', 'AAPL');
    for (const instanceId of ['inst-1', 'inst-"quoted"', 'ïnst']) {
      const prefix = invalidationPrefix(instanceId);
      for (const payload of [encodeInvalidation(instanceId, b.build().ids), encodeInvalidation(instanceId, undefined)]) {
        expect(payload.startsWith(prefix), payload).to.equal(true);
        expect(decodeInvalidation(payload).instanceId).to.equal(instanceId);
      }
      expect(encodeInvalidation(`${instanceId}-2`, b.build().ids).startsWith(prefix)).to.equal(false);
    }
  });

  it('decodes anything malformed as "drop everything"', () => {
    for (const bad of ['', 'not json', '[]', '{"v":2,"i":"x","o":[],"a":[],"p":[]}', '{"v":1,"i":"x","o":[1],"a":[],"p":[]}', '{"v":1,"i":"x","o":[],"a":[],"p":[["only-one"]]}']) {
      expect(decodeInvalidation(bad).tags, bad).to.equal(undefined);
    }
  });
});
