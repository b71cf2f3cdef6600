import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../errors.js';

/**
 * JSON is the only body this API reads (anything else is 415), and it is read strictly: bytes that
 * are not UTF-8, strings with unpaired surrogates, and numbers that a double cannot hold as written
 * (`19.999999999999999999`, `1e-400`, `1e400`) are refused naming the field, never stored changed.
 */
export function installJsonBody(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

export const jsonBody = fp(installJsonBody, { name: 'json-body' });

export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0) throw new ApiError('malformed_json', 'The body is empty.');
  if (!isUtf8(raw)) {
    const prefix = raw.subarray(0, firstInvalidUtf8(raw)).toString();
    throw refused(fieldAt(prefix), 'is not valid UTF-8');
  }
  const text = raw.toString();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError('malformed_json', `The body is not valid JSON: ${(error as Error).message}`);
  }
  const inexact = firstInexactNumber(text);
  if (inexact)
    throw refused(
      fieldAt(text.slice(0, inexact.index)),
      `is ${inexact.literal}, which cannot be read exactly as written (too many digits, or too small or too large)`,
    );
  // Only an escape (\ud800) can make an unpaired surrogate: the bytes were checked above.
  const field = unpairedSurrogateField(value, '');
  if (field !== undefined) throw refused(field, 'contains an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not a character');
  return value;
}

function refused(field: string, message: string): ApiError {
  const name = field || 'body';
  return new ApiError('validation_failed', `Invalid body: ${name} ${message}.`, [{ field: name, message }]);
}

// Strings are matched whole so that digits inside them are skipped; JSON.parse has checked the syntax.
const STRING_OR_NUMBER = /"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d[\d.eE+-]*)/g;

function firstInexactNumber(text: string): { index: number; literal: string } | undefined {
  STRING_OR_NUMBER.lastIndex = 0;
  for (let match; (match = STRING_OR_NUMBER.exec(text)) !== null;) {
    const literal = match[1];
    if (literal === undefined || isExact(literal)) continue;
    return { index: match.index, literal };
  }
  return undefined;
}

/** Whether the double JSON.parse makes of `literal` is the same decimal number the literal writes. */
export function isExact(literal: string): boolean {
  const value = Number(literal);
  return Number.isFinite(value) && canonical(literal) === canonical(String(value));
}

/** `0.digits × 10^exponent` with no leading or trailing zeros, so that 200.00, 2e2 and 200 compare equal. */
function canonical(decimal: string): string {
  // A JSON number literal, or what String() writes for a finite number: it matches whole.
  const [, sign, whole, fraction = '', exponent] = /(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/.exec(decimal)!;
  const digits = `${whole}${fraction}`.replace(/^0+/, '');
  // Stryker disable next-line StringLiteral: any word without an `e` names zero; '' is one
  if (digits === '') return '0';
  return `${sign}0.${digits.replace(/0+$/, '')}e${Number(exponent ?? 0) - fraction.length + digits.length}`;
}

/** Byte offset of the first byte that does not belong to a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  // Stryker disable next-line EqualityOperator: at i = bytes.length there is no byte, so the sequence is empty and valid, and the loop ends
  for (let i = 0; i < bytes.length;) {
    // The length the first byte announces. A byte that cannot begin a sequence (0x80-0xc1, 0xf5-0xff) and a
    // sequence cut short by the end of the body fail the check.
    const b = bytes[i]!;
    const length = b <= 0x7f ? 1 : b <= 0xdf ? 2 : b <= 0xef ? 3 : 4;
    if (!isUtf8(bytes.subarray(i, i + length))) return i;
    i += length;
  }
  return bytes.length;
}

// A string's closing quote is captured: a string cut short (`"a\"`) is no key.
const TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*("?)|[{}[\],:]|[^\s{}[\],:"]+/g;

/** The dotted path (`items.2.name`) of the value that `text`, the JSON before it, ends inside or after. */
function fieldAt(text: string): string {
  // An object's entry is its key ('' until read), an array's its index.
  const path: (string | number)[] = [];
  // Stryker disable next-line BooleanLiteral: only read inside an object, and `{` sets it
  let expectKey = false;
  TOKEN.lastIndex = 0;
  for (let match; (match = TOKEN.exec(text)) !== null;) {
    const token = match[0];
    const inObject = typeof path.at(-1) === 'string';
    if (token === '{' || token === '[') {
      path.push(token === '{' ? '' : 0);
      expectKey = token === '{';
    } else if (token === '}' || token === ']') {
      path.pop();
    } else if (token === ',') {
      if (inObject) expectKey = true;
      else path[path.length - 1] = (path.at(-1) as number) + 1;
    } else if (token === ':') {
      expectKey = false;
    } else if (expectKey && inObject && match[1] === '"') {
      path[path.length - 1] = keyOf(token);
    }
  }
  return path.filter((part) => part !== '').join('.');
}

/** A key as JSON reads it; a key JSON would refuse (a raw tab, a bad escape) comes before the bad bytes, and names none. */
function keyOf(token: string): string {
  try {
    return JSON.parse(token) as string;
  } catch {
    return '';
  }
}

function unpairedSurrogateField(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return /\p{Surrogate}/u.test(value) ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, child] of Object.entries(value)) {
    const childPath = path ? `${path}.${key}` : key;
    if (/\p{Surrogate}/u.test(key)) return childPath;
    const found = unpairedSurrogateField(child, childPath);
    if (found !== undefined) return found;
  }
  return undefined;
}
