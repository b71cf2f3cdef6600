import { describe, expect, it } from 'vitest';
import { envelopeJson } from '../../src/events/envelope.js';
import { makeEvent } from '../helpers/events.js';

describe('envelope JSON', () => {
  it('when an event is written, then money has two decimals and every other field is as JSON.stringify writes it', () => {
    const event = { ...makeEvent({ orderId: 4, sequence: 2 }), order: { ...makeEvent({ orderId: 4, sequence: 2 }).order, total_price: 1234.5, unit_price: 617.25 } };

    const json = envelopeJson(event);

    expect(json).toContain('"total_price":1234.50,');
    expect(json).toContain('"unit_price":617.25,');
    expect(JSON.parse(json)).toEqual(event);
    expect(json).toBe(JSON.stringify(event).replace('"total_price":1234.5,', '"total_price":1234.50,'));
  });

  it('when a field is undefined, a date, null, an array or a money name outside an object, then it is written as JSON.stringify would', () => {
    const at = new Date(Date.UTC(2026, 10, 25));

    expect(envelopeJson({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(envelopeJson({ at })).toBe(`{"at":${JSON.stringify(at)}}`);
    expect(envelopeJson({ n: null, s: 'x' })).toBe('{"n":null,"s":"x"}');
    expect(envelopeJson([1, { total_price: 2 }, 'y'])).toBe('[1,{"total_price":2.00},"y"]');
    expect(envelopeJson({ list: [{ unit_price: 3 }] })).toBe('{"list":[{"unit_price":3.00}]}');
    expect(envelopeJson({ quantity: 2, total_price: '2' })).toBe('{"quantity":2,"total_price":"2"}');
    expect(envelopeJson(5)).toBe('5');
    expect(envelopeJson({})).toBe('{}');
    expect(envelopeJson([])).toBe('[]');
  });
});
