import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { comparePositions, formatPosition, parsePosition, type LogPosition } from '../../src/events/log-position.js';

const xid8 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String);
const position = fc.record({ xid: xid8, position: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) });

describe('log positions', () => {
  it('when a position is formatted, then parsing gives it back', () => {
    fc.assert(
      fc.property(position, (p) => {
        expect(parsePosition(formatPosition(p))).toEqual(p);
      }),
    );
  });

  it('when two positions are compared, then the transaction id decides first (as 64-bit numbers, not text), then the position', () => {
    fc.assert(
      fc.property(position, position, (a, b) => {
        const byXid = BigInt(a.xid) < BigInt(b.xid) ? -1 : BigInt(a.xid) > BigInt(b.xid) ? 1 : 0;
        const expected = byXid !== 0 ? byXid : Math.sign(a.position - b.position);
        expect(comparePositions(a, b)).toBe(expected);
        expect(comparePositions(b, a)).toBe(-expected || 0);
      }),
    );
    const p = (xid: string, position: number): LogPosition => ({ xid, position });
    expect(comparePositions(p('9', 5), p('10', 1))).toBe(-1);
    expect(comparePositions(p('18446744073709551615', 1), p('18446744073709551614', 9))).toBe(1);
    expect(comparePositions(p('7', 3), p('7', 3))).toBe(0);
  });

  it('when a header is not a position, then it is not taken for one', () => {
    for (const bad of [undefined, 42, ['1:2'], '', '12', ':3', '3:', 'a:1', '1:b', '1:2:3', ' 1:2', '1:2 ', '-1:2', '1:-2', '1.5:2', '123456789012345678901:1']) {
      expect(parsePosition(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});
