import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors.js';
import { isExact, parseJsonBody } from '../../src/http/json-body.js';

/** The decimal a number literal writes, as a whole number of units of 10^power. */
function decimal(literal: string): { units: bigint; power: number } {
  const [mantissa = '', exponent = '0'] = literal.toLowerCase().split('e');
  const [whole = '', fraction = ''] = mantissa.split('.');
  return { units: BigInt(whole + fraction), power: Number(exponent) - fraction.length };
}

/** Whether JSON.parse gives `literal` back as written: the double reads back as the same decimal. */
function readsBackAsWritten(literal: string): boolean {
  const value = Number(literal);
  if (!Number.isFinite(value)) return false;
  const [a, b] = [decimal(literal), decimal(String(value))];
  const power = Math.min(a.power, b.power);
  return a.units * 10n ** BigInt(a.power - power) === b.units * 10n ** BigInt(b.power - power);
}

const digits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max });
const zeros = (max: number) => fc.nat(max).map((n) => '0'.repeat(n));

/** JSON number literals of every shape: signs, leading zeros after the point, trailing zeros, exponents. */
const writtenLiteral = fc
  .record({
    sign: fc.constantFrom('', '-'),
    whole: fc.oneof(fc.constant('0'), fc.tuple(fc.constantFrom(...'123456789'), digits(0, 22)).map(([first, rest]) => first + rest)),
    fraction: fc.option(fc.tuple(fc.oneof(zeros(12), zeros(400)), digits(1, 22), zeros(4)).map((parts) => parts.join('')), { nil: '' }),
    exponent: fc.option(
      fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.integer({ min: 0, max: 420 }), zeros(2)).map(([e, sign, n, pad]) => `${e}${sign}${pad}${n}`),
      { nil: '' },
    ),
  })
  .map(({ sign, whole, fraction, exponent }) => `${sign}${whole}${fraction ? `.${fraction}` : ''}${exponent}`);

/** The shortest literal of a double, rewritten: trailing zeros added, the last digit changed, the point moved into an exponent. */
const fromDouble = fc
  .tuple(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.nat(3), fc.boolean(), fc.nat())
  .map(([value, pad, nudge, at]) => {
    const { units, power } = decimal(String(value));
    let text = (units < 0n ? -units : units).toString() + '0'.repeat(pad);
    if (nudge) text = text.slice(0, -1) + String((Number(text.at(-1)) + 1) % 10);
    const point = 1 + (at % text.length);
    const fraction = text.slice(point);
    const sign = value < 0 || Object.is(value, -0) ? '-' : '';
    const whole = text.slice(0, point).replace(/^0+(?=\d)/, ''); // JSON writes no leading zeros
    return `${sign}${whole}${fraction ? `.${fraction}` : ''}e${power - pad + fraction.length}`;
  });

const literal = fc.oneof(writtenLiteral, fromDouble, fc.constantFrom('0', '-0', '0.0', '5e-324', '2e-324', '1.7976931348623157e308', '1.7976931348623159e308'));

describe('which numbers are exact as written', () => {
  it('when a literal is generated, then it is exact exactly when the double it becomes reads back as the same decimal', () => {
    fc.assert(
      fc.property(literal, (written) => {
        expect(isExact(written), written).toBe(readsBackAsWritten(written));
      }),
      { numRuns: 2000 },
    );
  });

  it('when a body holds a generated number, then it is accepted as that number, or refused naming it', () => {
    fc.assert(
      fc.property(literal, (written) => {
        const body = Buffer.from(`{"price":[${written}]}`);
        if (readsBackAsWritten(written)) {
          expect(parseJsonBody(body)).toEqual({ price: [Number(written)] });
        } else {
          expect(() => parseJsonBody(body)).toThrow(`Invalid body: price.0 is ${written}, which cannot be read exactly`);
        }
      }),
      { numRuns: 500 },
    );
  });
});

/** A JSON document whose leaves are text already written; `at` marks the leaf whose field a refusal must name. */
type Doc = { leaf: string } | { at: true } | { array: Doc[] } | { object: [string, Doc][] };

/** Characters at the edges of each UTF-8 length, and the ones JSON escapes. */
const CHARACTERS = ['a', '1', 'e', '.', ' ', '"', '\\', '{', ':', ',', '[', '\x7f', '\u0080', 'é', '\u07ff', '\u0800', '€', '\uffff', '\u{10000}', '😀', '\u{10ffff}'];
const text = fc.string({ unit: fc.constantFrom(...CHARACTERS), maxLength: 6 });
const space = fc.constantFrom('', ' ', '\n\t');

const exactLeaf = fc.oneof(
  text.map((s) => JSON.stringify(s)),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.constantFrom('true', 'false', 'null', '{}', '[]', '200.00', '1e2'),
);

/** A document with exactly one marked leaf somewhere in it. */
const doc: fc.Arbitrary<Doc> = fc.letrec<{ tree: Doc; marked: Doc }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, exactLeaf.map((leaf) => ({ leaf })), fc.array(tie('tree'), { maxLength: 3 }).map((array) => ({ array })), fc.array(fc.tuple(text, tie('tree')), { maxLength: 3 }).map((object) => ({ object }))),
  marked: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant({ at: true as const }),
    fc.tuple(fc.array(tie('tree'), { maxLength: 2 }), tie('marked'), fc.array(tie('tree'), { maxLength: 2 })).map(([before, at, after]) => ({ array: [...before, at, ...after] })),
    fc.tuple(fc.array(fc.tuple(text, tie('tree')), { maxLength: 2 }), text, tie('marked'), fc.array(fc.tuple(text, tie('tree')), { maxLength: 2 })).map(([before, key, at, after]) => ({
      object: [...before, [key, at] as [string, Doc], ...after],
    })),
  ),
})).marked;

/** The document's text up to the marked leaf and after it, and the field a client is told. */
function write(root: Doc, gap: string): { head: string; tail: string; field: string } {
  const parts: string[] = [];
  let split = 0;
  let field = '';
  const walk = (node: Doc, path: string[]): void => {
    if ('leaf' in node) parts.push(node.leaf);
    else if ('at' in node) {
      split = parts.length;
      field = path.filter((part) => part !== '').join('.') || 'body';
    } else if ('array' in node) {
      parts.push('[', gap);
      node.array.forEach((item, index) => {
        if (index > 0) parts.push(',', gap);
        walk(item, [...path, String(index)]);
      });
      parts.push(gap, ']');
    } else {
      parts.push('{', gap);
      node.object.forEach(([key, value], index) => {
        if (index > 0) parts.push(',', gap);
        parts.push(JSON.stringify(key), gap, ':', gap);
        walk(value, [...path, key]);
      });
      parts.push(gap, '}');
    }
  };
  walk(root, []);
  return { head: parts.slice(0, split).join(''), tail: parts.slice(split).join(''), field };
}

/** Byte sequences that are not UTF-8: stray continuation bytes, overlong forms, surrogates, past U+10FFFF, cut short. */
const BAD = [[0x80], [0xbf], [0xc0, 0xaf], [0xc1, 0xbf], [0xc2], [0xdf], [0xe0, 0x80, 0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xef, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x9f, 0x98], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xff]];

/** The refusal parseJsonBody throws for `raw`. */
function refusal(raw: Buffer): ApiError {
  try {
    parseJsonBody(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error('the body was accepted');
}

describe('which field a refusal names', () => {
  it('when bytes that are not UTF-8 are inside a string or just after a value, then the refusal names that value', () => {
    fc.assert(
      fc.property(doc, space, text, text, fc.constantFrom(...BAD), fc.constantFrom('inside', 'after', 'at the end'), (root, gap, before, after, bad, where) => {
        const { head, tail, field } = write(root, gap);
        const value = where === 'after' ? [`${JSON.stringify(before)}`, bad, ''] : [`"${JSON.stringify(before).slice(1, -1)}`, bad, where === 'inside' ? `${JSON.stringify(after).slice(1)}` : ''];
        const raw = Buffer.concat([Buffer.from(head + value[0]), Buffer.from(value[1] as number[]), Buffer.from(where === 'at the end' ? '' : `${value[2]}${tail}`)]);
        expect(refusal(raw).errors, raw.toString()).toEqual([{ field, message: 'is not valid UTF-8' }]);
      }),
      { numRuns: 1000 },
    );
  });

  it('when one number in a document cannot be read as written, then the refusal names its field', () => {
    fc.assert(
      fc.property(doc, space, fc.constantFrom('19.999999999999999999', '1e400', '-1e-400', '9007199254740993', '0.1000000000000000055511151231257827'), (root, gap, inexact) => {
        const { head, tail, field } = write(root, gap);
        const errors = refusal(Buffer.from(`${head}${inexact}${tail}`)).errors;
        expect(errors, `${head}${inexact}${tail}`).toEqual([{ field, message: `is ${inexact}, which cannot be read exactly as written (too many digits, or too small or too large)` }]);
      }),
      { numRuns: 1000 },
    );
  });

  it('when any bytes arrive, JSON-like or not, then the body is read or refused with a problem, never a crash', () => {
    // Fragments that make JSON and break it: structure, keys, escapes, numbers, control characters, bytes that are not UTF-8.
    const fragment = fc.constantFrom<string | number[]>(
      '{', '}', '[', ']', ',', ':', '"', '\\', '\\"', '\\u', 'd800', '\\x', 'a', '1', '0', '-', '.', 'e', '+', '9'.repeat(20), '0'.repeat(30),
      ' ', '\t', '\n', '\u0000', 'é', '😀', 'true', 'null', [0xff], [0xc3], [0x80], [0xed, 0xa0, 0x80], [0xf0, 0x9f], [0xe2, 0x82],
    );
    // Bytes that are not UTF-8 are most often met after a few keys and strings, some of them broken: a head of those comes first.
    const keyish = fc.constantFrom<string | number[]>('{', '"', 'a', '\\"', '\\x', '\t', ':', '1', ',', [0xff]);
    fc.assert(
      fc.property(fc.array(keyish, { maxLength: 10 }), fc.array(fragment, { maxLength: 30 }), (head, parts) => {
        const raw = Buffer.concat([...head, ...parts].map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part))));
        try {
          parseJsonBody(raw);
        } catch (error) {
          expect(error, raw.toString('latin1')).toBeInstanceOf(ApiError);
          expect(['malformed_json', 'validation_failed']).toContain((error as ApiError).code);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
