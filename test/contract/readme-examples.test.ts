import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { requestViolations } from '../helpers/openapi-validation.js';
import { startTestService } from '../helpers/service.js';

interface Example {
  line: number;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** Every curl command in a page's shell blocks, as a request (continuation lines joined, pipes and comments dropped). */
function curlExamples(page: string): Example[] {
  const examples: Example[] = [];
  const lines = page.split('\n');
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

const root = new URL('../../', import.meta.url);
/** The front page, and the docs pages that show the API (api.md and whichever else gives a curl line). */
const pages = ['README.md', ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
  .map((path) => ({ path, examples: curlExamples(readFileSync(new URL(path, root), 'utf8')) }))
  .filter(({ examples }) => examples.length > 0);

describe('the curl examples of the README and docs/', () => {
  it('when they are counted, then the README and docs/api.md show at least 10 between them', () => {
    const shown = pages.filter(({ path }) => path === 'README.md' || path === 'docs/api.md');
    expect(shown.map(({ path }) => path)).toEqual(['README.md', 'docs/api.md']);
    expect(shown.reduce((sum, { examples }) => sum + examples.length, 0)).toBeGreaterThanOrEqual(10);
  });

  it.each(pages)('when the examples of $path are run in order against a fresh service, then each is a request /openapi.json allows, each succeeds, and every answer matches the document', async ({ path, examples }) => {
    const service = await startTestService({ database: 'pglite' });
    try {
      await service.app.ready();
      for (const example of examples) {
        expect(requestViolations(service.app, example), `${path} line ${example.line}`).toEqual([]);
        const response = await service.app.inject({ method: example.method as 'GET', url: example.url, headers: example.headers, ...(example.body === undefined ? {} : { payload: example.body }) });
        expect(response.statusCode, `${path} line ${example.line}: ${example.method} ${example.url}: ${response.body}`).toBeLessThan(400);
      }
    } finally {
      await service.close();
    }
  });
});
