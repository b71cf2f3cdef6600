import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors.js';
import { installJsonBody, isExact, parseJsonBody } from '../../src/http/json-body.js';
import { installErrorHandling } from '../../src/http/problems.js';

/** The refusal parseJsonBody throws for `raw`, as the client gets it. */
function refusal(raw: Buffer | string): { code: string; detail: string; errors?: { field: string; message: string }[] } {
  try {
    parseJsonBody(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    const { code, detail, errors } = error as ApiError;
    return { code, detail, ...(errors ? { errors } : {}) };
  }
  throw new Error('the body was accepted');
}

/** `head`, then bytes that are not UTF-8, then `tail`. */
const withBadBytes = (head: string, bad: number[], tail: string) => Buffer.concat([Buffer.from(head), Buffer.from(bad), Buffer.from(tail)]);

const NOT_UTF8 = 'is not valid UTF-8';
const SURROGATE = 'contains an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not a character';

describe('reading a JSON body', () => {
  it('when the body is empty, then it is malformed_json saying so', () => {
    expect(refusal('')).toEqual({ code: 'malformed_json', detail: 'The body is empty.' });
  });

  it('when the body is not JSON, then it is malformed_json with the parser\'s words', () => {
    let words = '';
    try {
      JSON.parse('{"a":');
    } catch (error) {
      words = (error as Error).message;
    }
    expect(refusal('{"a":')).toEqual({ code: 'malformed_json', detail: `The body is not valid JSON: ${words}` });
  });

  it('when the body is well-formed, then it is read as written, multi-byte characters and surrogate pairs included', () => {
    const text = '{"name":"Zoë ©߿ࠀ\uFFFD𐀀\u{10FFFF} \\ud83d\\ude00 \\\\ud800","price":200.00,"n":[1e2,0e5,-1.5E1,1e+2,0.1]}';
    expect(parseJsonBody(Buffer.from(text))).toEqual({ name: 'Zoë ©߿ࠀ\uFFFD𐀀\u{10FFFF} 😀 \\ud800', price: 200, n: [100, 0, -15, 100, 0.1] });
  });

  it.each([
    ['a top-level string', '"', [0xff], '"', 'body'],
    ['a field after others', '{"a":1,"b":"x', [0xff], '"}', 'b'],
    ['an array item', '[1,2,"', [0xff], '"]', '2'],
    ['a field of an item of an array', '{"a":[{"x":1},{"y":"', [0xff], '"}]}', 'a.1.y'],
    ['a field after a closed object', '{"a":{"b":1},"c":"', [0xff], '"}', 'c'],
    ['a field after a closed array', '{"a":[1,2],"c":"', [0xff], '"}', 'c'],
    ['a field whose name has an escaped quote', '{"a\\"b":"', [0xff], '"}', 'a"b'],
    ['a field name', '{"', [0xff], '":1}', 'body'],
    ['a field after multi-byte characters of every length', '{"a":"©߿ࠀ\uFFFD𐀀\u{10FFFF}","b":"', [0xff], '"}', 'b'],
    ['a truncated sequence', '{"a":{"b":"', [0xe2, 0x82], '"}}', 'a.b'],
    ['a bad continuation byte', '{"a":"€","b":"', [0xe2, 0x28, 0xa1], '"}', 'b'],
    ['an overlong encoding', '{"a":"', [0xc0, 0xaf], '"}', 'a'],
    ['an encoded surrogate', '{"a":"', [0xed, 0xa0, 0x80], '"}', 'a'],
    ['a lead byte past U+10FFFF', '{"a":"', [0xf5, 0x80, 0x80, 0x80], '"}', 'a'],
    ['a bare continuation byte', '{"a":"', [0x80], '"}', 'a'],
    ['the place just after a string value', '{"a":"x"', [0xff], '}', 'a'],
    ['a field name cut short', '{"ab', [0xff], '":1}', 'body'],
    ['a field name cut short after an escaped quote', '{"a\\"', [0xff], '":1}', 'body'],
    ['a field after a key with a raw tab', '{"a\tb":1,"c":"', [0xff], '"}', 'c'],
    ['a field after a key with a bad escape', '{"a\\x":1,"c":"', [0xff], '"}', 'c'],
    ['a field after an object whose key has a bad escape', '{"o":{"a\\x":1},"c":"', [0xff], '"}', 'c'],
    ['the value of a nested key with a bad escape', '{"o":{"a\\x":"', [0xff], '"}}', 'o'],
    ['the value of a key with a bad escape', '{"a\\x":"', [0xff], '"}', 'body'],
    ['a field name in a nested object', '{"a":{"', [0xff], '":1}}', 'a'],
    ['a field after DEL and a two-byte character', '{"a":"\x7f©","b":"', [0xff], '"}', 'b'],
    ['a sequence cut short by the end of the body', '{"a":"€","b":"', [0xf0, 0x9f, 0x98], '', 'b'],
  ])('when %s is not UTF-8, then it is 422 naming it', (_case, head, bad, tail, field) => {
    expect(refusal(withBadBytes(head, bad, tail))).toEqual({ code: 'validation_failed', detail: `Invalid body: ${field} ${NOT_UTF8}.`, errors: [{ field, message: NOT_UTF8 }] });
  });

  it.each([
    ['{"a":[1,2.0000000000000000001]}', 'a.1', '2.0000000000000000001'],
    ['{ "a" : { "b" : 1e400 } }', 'a.b', '1e400'],
    ['{"1e400":"19.999999999999999999","x\\"1e400":1,"p":1e-400}', 'p', '1e-400'],
    ['[9007199254740993]', '0', '9007199254740993'],
    ['-1234567890.123456789', 'body', '-1234567890.123456789'],
    ['[{},"x",1e400]', '2', '1e400'],
    ['["x",1e400]', '1', '1e400'],
  ])('when %s has a number a double cannot hold as written, then it is 422 naming %s', (text, field, literal) => {
    const message = `is ${literal}, which cannot be read exactly as written (too many digits, or too small or too large)`;
    expect(refusal(text)).toEqual({ code: 'validation_failed', detail: `Invalid body: ${field} ${message}.`, errors: [{ field, message }] });
  });

  it.each([
    ['"\\ud800"', 'body'],
    ['{"a":{"b":"x\\uDBFF"}}', 'a.b'],
    ['{"items":["ok","\\udc00"]}', 'items.1'],
    ['{"a":"\\ude00\\ud83d"}', 'a'],
    ['{"a":{"k\\uDFFF":1}}', 'a.k\udfff'],
  ])('when %s has an unpaired surrogate, then it is 422 naming %j', (text, field) => {
    expect(refusal(text)).toEqual({ code: 'validation_failed', detail: `Invalid body: ${field} ${SURROGATE}.`, errors: [{ field, message: SURROGATE }] });
  });

  it.each(['200.00', '2e2', '1E2', '1e+2', '0.1', '1e-7', '0e5', '0.0e-3', '-0', '-1.50', '100e-2', '123456789012345', '0.000000000000000001', '0.30000000000000004', '9007199254740992', '1.7976931348623157e308', '5e-324', '1.50e1', '1.050e2', '1050000000000000000000', '-1.5e-7'])(
    'when a number is written %s, then it is exact',
    (literal) => {
      expect(isExact(literal)).toBe(true);
    },
  );

  it.each(['19.999999999999999999', '1234567890123456789', '9007199254740993', '1e400', '-1e400', '1e-400', '0.1000000000000000055511151231257827', '2e-324'])(
    'when a number is written %s, then it is not exact',
    (literal) => {
      expect(isExact(literal)).toBe(false);
    },
  );

  it('when a number is written without an exponent but too small for a double, then it is refused as 1e-401 is', () => {
    const tiny = `0.${'0'.repeat(400)}1`;
    expect(isExact(tiny)).toBe(false);
    expect(refusal(`{"p":${tiny}}`).errors).toEqual([{ field: 'p', message: `is ${tiny}, which cannot be read exactly as written (too many digits, or too small or too large)` }]);
  });

  describe('in an app that installs it', () => {
    /** An app with the JSON body and the problem answers installed, and a route that echoes the body. */
    async function app() {
      const built = Fastify();
      installJsonBody(built);
      installErrorHandling(built);
      built.post('/things', async (request) => ({ body: request.body }));
      await built.ready();
      return built;
    }

    it('when a body is well-formed JSON, then the route gets it read', async () => {
      const built = await app();
      const response = await built.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '{"price":19.99}' });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ body: { price: 19.99 } });
      await built.close();
    });

    it('when a number cannot be read as written, then the answer is 422 naming its field', async () => {
      const built = await app();
      const response = await built.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '{"price":19.999999999999999999}' });
      expect(response.statusCode).toBe(422);
      expect(response.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'price', message: 'is 19.999999999999999999, which cannot be read exactly as written (too many digits, or too small or too large)' }] });
      await built.close();
    });

    it('when a body is not JSON, then the answer is 415', async () => {
      const built = await app();
      const response = await built.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'text/plain' }, payload: 'price: 19.99' });
      expect(response.statusCode).toBe(415);
      expect(response.json()).toMatchObject({ code: 'unsupported_media_type' });
      await built.close();
    });
  });
});
