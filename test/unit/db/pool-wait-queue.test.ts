import { expect } from 'chai';
import { WaitQueue } from '../../../src/db/pool-wait-queue';

describe('db/WaitQueue', () => {
  it('is first in, first out', () => {
    const queue = new WaitQueue<string>();
    queue.push('a');
    queue.push('b');
    queue.push('c');
    expect(queue.length).to.equal(3);
    expect([queue.shift(), queue.shift(), queue.shift(), queue.shift()]).to.deep.equal(['a', 'b', 'c', undefined]);
    expect(queue.length).to.equal(0);
  });

  it('removes from the head, the middle and the tail, once', () => {
    const queue = new WaitQueue<number>();
    const nodes = [1, 2, 3, 4, 5].map((n) => queue.push(n));
    expect(queue.remove(nodes[2]!)).to.equal(true);
    expect(queue.remove(nodes[2]!)).to.equal(false);
    expect(queue.remove(nodes[0]!)).to.equal(true);
    expect(queue.remove(nodes[4]!)).to.equal(true);
    expect(queue.length).to.equal(2);
    queue.push(6);
    expect([queue.shift(), queue.shift(), queue.shift()]).to.deep.equal([2, 4, 6]);
    // A shifted node is no longer in the queue.
    expect(queue.remove(nodes[1]!)).to.equal(false);
    expect(queue.length).to.equal(0);
  });
});
