import { describe, expect, it } from 'vitest';
import { envelopeJson } from '../../src/events/envelope.js';
import { decodeEvent } from '../../src/messaging/decode.js';
import { makeEvent } from '../helpers/events.js';

const body = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');

describe('decoding a message body from the broker', () => {
  it('when the envelope breaks its schema, then the reason names the first field at fault', () => {
    const { id: _id, ...withoutId } = makeEvent();
    expect(decodeEvent(body({ ...withoutId, sequence: 0 }))).toEqual({ ok: false, reason: "data must have required property 'id'" });
  });

  it('when the body is an envelope as published (money with two decimals), then it is the event', () => {
    const event = makeEvent({ orderId: 12, sequence: 2 });
    expect(decodeEvent(Buffer.from(envelopeJson(event), 'utf8'))).toEqual({ ok: true, event });
  });

  it('when the body is not JSON, then it is refused as such', () => {
    expect(decodeEvent(body('{"id": '))).toEqual({ ok: false, reason: 'body is not JSON' });
  });

  it.each([
    ['an id that is not a UUID', { id: 'not-a-uuid' }, 'data/id must match format "uuid"'],
    ['a time that is not a date-time', { occurred_at: 'yesterday' }, 'data/occurred_at must match format "date-time"'],
  ])('when the envelope has %s, then it is refused', (_case, change, reason) => {
    expect(decodeEvent(body({ ...makeEvent(), ...change }))).toEqual({ ok: false, reason });
  });
});
