import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

/**
 * vitest globalSetup: test files leave what the OpenAPI check saw in a folder (test/helpers/openapi-check.ts);
 * at the end of the run this prints how many answers were checked against /openapi.json, and which documented
 * routes and statuses they covered.
 */
export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'openapi-coverage-'));
  project.provide('openapiCoverageDir', dir);
  return () => {
    try {
      process.stdout.write(summary(dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function summary(dir: string): string {
  const checked = new Map<string, number>();
  const declared = new Set<string>();
  let violations = 0;
  for (const file of readdirSync(dir)) {
    const part = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { checked: [string, number][]; declared: string[]; violations: number };
    for (const [key, n] of part.checked) checked.set(key, (checked.get(key) ?? 0) + n);
    for (const key of part.declared) declared.add(key);
    violations += part.violations;
  }
  const total = [...checked.values()].reduce((a, b) => a + b, 0);
  const documented = [...checked.keys()].filter((key) => declared.has(key));
  const byRoute = new Map<string, string[]>();
  for (const key of [...checked.keys()].sort()) {
    const at = key.lastIndexOf(' ');
    const route = key.endsWith('(not documented)') ? key : key.slice(0, at);
    const status = key.endsWith('(not documented)') ? '' : key.slice(at + 1);
    byRoute.set(route, [...(byRoute.get(route) ?? []), `${status}${status ? ' ' : ''}×${checked.get(key)}`]);
  }
  const unseen = [...declared].filter((key) => !checked.has(key)).sort();
  return [
    '',
    `openapi: ${total} answers checked against /openapi.json, ${violations} disagreed; ` +
      `${documented.length} of ${declared.size} declared route statuses seen`,
    ...[...byRoute].map(([route, statuses]) => `  ${route}: ${statuses.join(', ')}`),
    `  declared, never seen: ${unseen.join('; ') || 'none'}`,
    '',
  ].join('\n');
}

declare module 'vitest' {
  export interface ProvidedContext {
    openapiCoverageDir: string;
  }
}
