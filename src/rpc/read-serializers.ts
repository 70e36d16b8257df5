import type { OrderFlowDefinition } from '../generated/orderflow/v1/OrderFlow';

/**
 * Wraps a response serializer so a frozen message is encoded once: its bytes
 * are kept, weakly, for as long as the message object lives. Sound because
 * the read handlers freeze a message only whole (deepFreeze), so a frozen
 * message cannot change. The query cache stores GetOrder's answer as a frozen
 * Order per entry, and the list and position handlers keep one frozen answer
 * per cached value (AnswerMemo): a cache hit skips proto-loader's fromObject
 * + encode; an invalidated or evicted entry drops the object and, with it,
 * its bytes. Any other value is serialized as before.
 */
export function memoizeFrozen<T extends object>(serialize: (value: T) => Buffer): (value: T) => Buffer {
  const bytes = new WeakMap<T, Buffer>();
  return (value) => {
    if (!Object.isFrozen(value)) return serialize(value);
    let encoded = bytes.get(value);
    if (encoded === undefined) {
      encoded = serialize(value);
      bytes.set(value, encoded);
    }
    return encoded;
  };
}

/** Freezes a plain message and every object and array inside it; returns it. */
export function deepFreeze<T extends object>(message: T): Readonly<T> {
  for (const value of Object.values(message)) {
    // Into frozen objects too: a shallowly frozen one may still hold something mutable.
    if (typeof value === 'object' && value !== null) deepFreeze(value as object);
  }
  return Object.freeze(message);
}

/**
 * One frozen answer per cached value: a list page or position is turned into
 * its wire message once per cache entry, not once per call, and
 * memoizeFrozen then keeps its bytes. Held weakly by the cached value, so an
 * invalidated or evicted entry drops its answer too. An answer depends on
 * the value and on the request's filters and page size, which are all in the
 * cache key: a value is reused only under the key it was built for.
 */
export class AnswerMemo<V extends object, R extends object> {
  private readonly answers = new WeakMap<V, { key: string; answer: Readonly<R> }>();

  /** The frozen answer built by `build` for `value` under `key`, built now if there is none. */
  answer(key: string, value: V, build: (value: V) => R): Readonly<R> {
    const kept = this.answers.get(value);
    if (kept !== undefined && kept.key === key) return kept.answer;
    const answer = deepFreeze(build(value));
    this.answers.set(value, { key, answer });
    return answer;
  }
}

/** Methods whose answers the handlers freeze: their serializers keep the bytes (see memoizeFrozen). */
const MEMOIZED = ['GetOrder', 'ListOrders', 'ListFills', 'GetPosition'] as const;

/** The OrderFlow definition with the read answers' serializers memoizing frozen messages (see memoizeFrozen). */
export function withReadSerializers(definition: OrderFlowDefinition): OrderFlowDefinition {
  const wrapped = { ...definition };
  for (const method of MEMOIZED) {
    const d = definition[method] as { responseSerialize: (value: object) => Buffer };
    (wrapped as Record<string, unknown>)[method] = { ...d, responseSerialize: memoizeFrozen(d.responseSerialize) };
  }
  return wrapped;
}
