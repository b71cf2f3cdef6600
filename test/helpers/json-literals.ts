/**
 * JSON.parse that also keeps each number as it was written, by JSON pointer (`/items/0/total_price` → `"200.00"`),
 * so a check can compare decimals on the text rather than on a double (200.00 and 200 parse alike).
 */
export function parseKeepingNumbers(text: string): { value: unknown; numbers: Map<string, string> } {
  JSON.parse(text); // the syntax check, with JSON.parse's own error
  const numbers = new Map<string, string>();
  let at = 0;
  const SPACE = /[ \t\n\r]*/y;
  const STRING = /"(?:[^"\\]|\\.)*"/y;
  const SCALAR = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
  const skip = () => {
    SPACE.lastIndex = at;
    SPACE.exec(text);
    at = SPACE.lastIndex;
  };
  const take = (pattern: RegExp): string => {
    pattern.lastIndex = at;
    const token = pattern.exec(text)![0];
    at = pattern.lastIndex;
    return token;
  };
  const read = (pointer: string): unknown => {
    skip();
    const c = text[at];
    if (c === '"') return JSON.parse(take(STRING)) as string;
    if (c === '{' || c === '[') {
      at++;
      const container: Record<string, unknown> | unknown[] = c === '{' ? {} : [];
      for (let index = 0; ; index++) {
        skip();
        if (text[at] === '}' || text[at] === ']') {
          at++;
          return container;
        }
        if (text[at] === ',') {
          at++;
          skip();
        }
        if (Array.isArray(container)) {
          container.push(read(`${pointer}/${index}`));
        } else {
          const key = JSON.parse(take(STRING)) as string;
          skip();
          at++; // the colon
          Object.defineProperty(container, key, { value: read(`${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`), enumerable: true, writable: true, configurable: true });
        }
      }
    }
    const token = take(SCALAR);
    if (token === 'true' || token === 'false' || token === 'null') return JSON.parse(token) as unknown;
    numbers.set(pointer, token);
    return Number(token);
  };
  return { value: read(''), numbers };
}
