import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, inject } from 'vitest';
import { takeResults } from './openapi-validation.js';

// Runs in every test file (vitest setupFiles): an answer that breaks the document fails the test that got it.
const checked = new Map<string, number>();
const declared = new Set<string>();
let disagreed = 0;

function collect(): string[] {
  const results = takeResults();
  disagreed += results.violations.length;
  for (const [key, n] of results.checked) checked.set(key, (checked.get(key) ?? 0) + n);
  for (const key of results.declared) declared.add(key);
  return results.violations;
}

const fail = (violations: string[]) => {
  if (violations.length > 0) throw new Error(`${violations.length} answer(s) disagree with /openapi.json:\n- ${violations.join('\n- ')}`);
};

afterEach(() => fail(collect()));

afterAll(() => {
  const violations = collect();
  const dir = inject('openapiCoverageDir');
  if (dir) writeFileSync(join(dir, `${randomUUID()}.json`), JSON.stringify({ checked: [...checked], declared: [...declared], violations: disagreed }));
  fail(violations);
});
