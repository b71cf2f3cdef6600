import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
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

export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0) throw new ApiError('malformed_json', 'The body is empty.');
  if (!isUtf8(raw)) {
    const prefix = raw.subarray(0, firstInvalidUtf8(raw)).toString();
    throw refused(fieldAt(prefix, prefix.length), 'is not valid UTF-8');
  }
  const text = raw.toString();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError('malformed_json', `The body is not valid JSON: ${(error as Error).message}`);
  }
  const inexact = firstInexactNumber(text);
  if (inexact) throw refused(fieldAt(text, inexact.index), `is ${inexact.literal}, which cannot be read exactly as written (too many digits, or too small or too large)`);
  // Only an escape (\ud800) can make an unpaired surrogate: the bytes were checked above.
  if (/\\u[dD][89a-fA-F]/.test(text)) {
    const field = unpairedSurrogateField(value, '');
    if (field !== undefined) throw refused(field, 'contains an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not a character');
  }
  return value;
}

function refused(field: string, message: string): ApiError {
  const name = field || 'body';
  return new ApiError('validation_failed', `Invalid body: ${name} ${message}.`, [{ field: name, message }]);
}

// Strings are matched whole so that digits inside them are skipped; JSON.parse has checked the syntax.
const STRING_OR_NUMBER = /"[^"\\]*(?:\\.[^"\\]*)*"|-?\d[\d.eE+-]*/g;

function firstInexactNumber(text: string): { index: number; literal: string } | undefined {
  STRING_OR_NUMBER.lastIndex = 0;
  for (let match; (match = STRING_OR_NUMBER.exec(text)) !== null; ) {
    const literal = match[0];
    if (literal.charCodeAt(0) === 0x22 || isExact(literal)) continue;
    return { index: match.index, literal };
  }
  return undefined;
}

/** Whether the double JSON.parse makes of `literal` is the same decimal number the literal writes. */
export function isExact(literal: string): boolean {
  // Up to 15 significant digits and no exponent always survive the round trip through a double.
  if (/^-?\d+(?:\.\d+)?$/.test(literal) && literal.replace(/[-.]/g, '').replace(/^0+/, '').length <= 15) return true;
  return canonical(literal) === canonical(String(Number(literal)));
}

/** `digits e exponent` with no leading or trailing zeros, so that 200.00, 2e2 and 200 compare equal. */
function canonical(decimal: string): string | undefined {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(decimal);
  if (!match) return undefined; // Infinity: a literal out of range
  const [, sign, whole = '', fraction = '', exponent = '0'] = match;
  const digits = (whole + fraction).replace(/^0+/, '');
  if (digits === '') return '0';
  const significant = digits.replace(/0+$/, '');
  return `${sign}${significant}e${Number(exponent) - fraction.length + (digits.length - significant.length)}`;
}

/** Byte offset of the first byte that does not belong to a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    const length = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (length === 0 || i + length > bytes.length) return i;
    if (!isUtf8(bytes.subarray(i, i + length))) return i;
    i += length;
  }
  return bytes.length;
}

const TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*"?|[{}[\],:]|[^\s{}[\],:"]+/g;

/** The dotted path (`items.2.name`) of the value that `text` is inside at `end`, read from the JSON before it. */
function fieldAt(text: string, end: number): string {
  const path: (string | number)[] = [];
  const containers: string[] = [];
  let expectKey = false;
  TOKEN.lastIndex = 0;
  for (let match; (match = TOKEN.exec(text)) !== null && match.index < end; ) {
    const token = match[0];
    const inObject = containers.at(-1) === '{';
    if (token === '{' || token === '[') {
      containers.push(token);
      path.push(token === '{' ? '' : 0);
      expectKey = token === '{';
    } else if (token === '}' || token === ']') {
      containers.pop();
      path.pop();
    } else if (token === ',') {
      if (inObject) expectKey = true;
      else path[path.length - 1] = (path.at(-1) as number) + 1;
    } else if (token === ':') {
      expectKey = false;
    } else if (expectKey && inObject && token.startsWith('"') && token.length > 1 && token.endsWith('"')) {
      path[path.length - 1] = JSON.parse(token) as string;
    }
  }
  return path.filter((part) => part !== '').join('.');
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
