import * as ws from 'ws';
import { describe, expect, it } from 'vitest';
import { senderOf, toOutgoing } from '../../src/notifications/frame.js';
import { makeEvent } from './harness.js';

describe('the pre-built event frame', () => {
  it.each([
    ['no Sender', {}],
    ['a Sender without frame', { Sender: {} }],
    ['a Sender whose frame is not a function', { Sender: { frame: 'x' } }],
    ['nothing at all', undefined],
  ])('when a ws release exports %s, then the notifier refuses to load, naming what is missing', (_what, module) => {
    expect(() => senderOf(module)).toThrow('ws no longer exports Sender.frame; notifications need it');
  });

  it('when ws is as shipped, then its Sender is used', () => {
    expect(senderOf(ws)).toBe((ws as unknown as { Sender: unknown }).Sender);
  });

  it('when an event is framed, then it is one unmasked, final text frame around its JSON', () => {
    const event = makeEvent({ orderId: 7 });

    const out = toOutgoing(event);

    expect(JSON.parse(out.payload.toString())).toEqual(event);
    // FIN and the text opcode, no compression bit, then an unmasked length, then the payload itself.
    expect(out.frame[0]).toBe(0x81);
    expect(out.frame[1]! & 0x80).toBe(0);
    expect(out.frame.subarray(out.frame.length - out.payload.length)).toEqual(out.payload);
  });
});
