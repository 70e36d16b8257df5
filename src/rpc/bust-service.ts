import { InvalidArgumentError } from '../errors';
import type { OrderFlowHandlers } from '../generated/orderflow/v1/OrderFlow';
import type { FillBuster } from '../store/busts';
import type { Logger } from '../telemetry/logger';
import { MAX_ID_CHARS, readId } from './read-arguments';
import { unary } from './query-service';

/** Most fill ids one BustFills call may name (public contract: proto comment). */
export const MAX_BUST_FILL_IDS = 10_000;
/** Longest bust reason, characters (public contract: proto comment). */
export const MAX_BUST_REASON_CHARS = 256;

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** The BustFills handler. */
export type BustHandlers = Pick<OrderFlowHandlers, 'BustFills'>;

/** Validates a BustFills request: 1..MAX_BUST_FILL_IDS valid ids, a non-empty reason of at most 256 characters. */
export function readBustRequest(fillIds: readonly string[], reason: string): { fillIds: string[]; reason: string } {
  if (fillIds.length === 0) throw new InvalidArgumentError('fill_ids', 'must hold at least one id');
  if (fillIds.length > MAX_BUST_FILL_IDS) throw new InvalidArgumentError('fill_ids', `must hold at most ${MAX_BUST_FILL_IDS} ids`);
  const ids = fillIds.map((value, i) => readId(`fill_ids[${i}]`, value, MAX_ID_CHARS, true)!);
  if (reason === '') throw new InvalidArgumentError('reason', 'must not be empty');
  if ([...reason].length > MAX_BUST_REASON_CHARS) throw new InvalidArgumentError('reason', `must be at most ${MAX_BUST_REASON_CHARS} characters`);
  if (CONTROL_CHARACTERS.test(reason)) throw new InvalidArgumentError('reason', 'must not contain control characters');
  return { fillIds: ids, reason };
}

/**
 * BustFills: validate, bust in chunks (each chunk commits, notifies other
 * instances and invalidates this one's cache before the answer is sent).
 */
export function createBustHandlers(buster: FillBuster, logger: Logger): BustHandlers {
  return {
    BustFills: unary('BustFills', logger, async (req, signal, span) => {
      const { fillIds, reason } = readBustRequest(req.fill_ids, req.reason);
      const result = await buster.bust(fillIds, reason, signal);
      span.setAttributes({ 'orderflow.bust.requested': fillIds.length, 'orderflow.bust.busted': result.busted, 'orderflow.bust.not_found': result.notFound.length });
      logger.info({ requested: fillIds.length, busted: result.busted, notFound: result.notFound.length, reason }, 'fills busted');
      return { busted: result.busted, not_found: result.notFound };
    }),
  };
}
