import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { OrderEvent } from '../events/envelope.js';
import { DECIMAL_PLACES } from '../http/money.js';

// ajv-formats is CommonJS; under NodeNext its default export is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

// allErrors stays off: a reason names the first error only.
const ajv = new Ajv();
addFormats(ajv, ['uuid', 'date-time']);
// Money's decimals are the publisher's promise (the database renders them); the decoder reads parsed numbers.
ajv.addKeyword(DECIMAL_PLACES);
const isOrderEvent = ajv.compile<OrderEvent>(OrderEvent);

export type Decoded = { ok: true; event: OrderEvent } | { ok: false; reason: string };

/** Parses and checks a message body against the event envelope; never throws. */
export function decodeEvent(body: Buffer): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, reason: 'body is not JSON' };
  }
  if (isOrderEvent(value)) return { ok: true, event: value };
  return { ok: false, reason: ajv.errorsText(isOrderEvent.errors) };
}
