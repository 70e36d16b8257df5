import type { OrderFlowDefinition } from '../generated/orderflow/v1/OrderFlow';

/**
 * Wraps a response serializer so a frozen message is encoded once: its bytes
 * are kept, weakly, for as long as the message object lives. Sound because a
 * frozen object cannot change (an Order has only scalar fields, so freezing
 * it freezes all of it). The query cache stores GetOrder's answer as a frozen
 * Order per entry, so a cache hit skips proto-loader's fromObject + encode;
 * an invalidated or evicted entry drops the object and, with it, its bytes.
 * Any other value is serialized as before.
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

/** The OrderFlow definition with GetOrder's response serializer memoizing frozen Orders (see memoizeFrozen). */
export function withReadSerializers(definition: OrderFlowDefinition): OrderFlowDefinition {
  const getOrder = definition.GetOrder;
  return { ...definition, GetOrder: { ...getOrder, responseSerialize: memoizeFrozen(getOrder.responseSerialize) } };
}
