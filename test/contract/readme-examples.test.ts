import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestViolations } from '../helpers/openapi-validation.js';
import { startTestService, type TestService } from '../helpers/service.js';

interface Example {
  line: number;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** Every curl command in the README's shell blocks, as a request (continuation lines joined, pipes and comments dropped). */
function curlExamples(readme: string): Example[] {
  const examples: Example[] = [];
  const lines = readme.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('curl ')) continue;
    const first = i + 1;
    let command = lines[i]!;
    while (command.endsWith('\\')) command = `${command.slice(0, -1)} ${lines[++i]!.trim()}`;
    const words = [...command.replace(/ \| .*$/, '').matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
    const example: Example = { line: first, method: 'GET', url: '', headers: {}, body: undefined };
    for (let w = 1; w < words.length; w++) {
      const word = words[w]!;
      if (word === '-X') example.method = words[++w]!;
      else if (word === '-H') {
        const [name, ...value] = words[++w]!.split(':');
        example.headers[name!.trim().toLowerCase()] = value.join(':').trim();
      } else if (word === '-d') example.body = words[++w]!;
      else if (word.startsWith('http')) example.url = word.replace(/^http:\/\/127\.0\.0\.1:8001/, '');
    }
    if (example.body !== undefined && example.method === 'GET') example.method = 'POST';
    examples.push(example);
  }
  return examples;
}

describe('the README\'s curl examples', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite' });
    await service.app.ready();
  });
  afterAll(() => service?.close());

  it('when they are run in order against a fresh service, then each is a request /openapi.json allows, each succeeds, and every answer matches the document', async () => {
    const examples = curlExamples(readFileSync(new URL('../../README.md', import.meta.url), 'utf8'));
    expect(examples.length).toBeGreaterThanOrEqual(10);
    for (const example of examples) {
      expect(requestViolations(service.app, example), `README line ${example.line}`).toEqual([]);
      const response = await service.app.inject({ method: example.method as 'GET', url: example.url, headers: example.headers, ...(example.body === undefined ? {} : { payload: example.body }) });
      expect(response.statusCode, `README line ${example.line}: ${example.method} ${example.url}: ${response.body}`).toBeLessThan(400);
    }
  });
});
