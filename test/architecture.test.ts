import { cruise } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

/** A folder of src (orders, db, …), or a file at its top (src/config.ts, …): the units the layers are made of. */
const unitOf = (path: string) => /^src\/([^/]+)\//.exec(path)?.[1] ?? path;

describe('the layers of src', () => {
  it('when every import between units (folders, and the files at the top) is followed, then none leads back to where it started', async () => {
    const { output } = await cruise(['src'], { exclude: { path: 'src/db/migrations' } });
    const graph = new Map<string, Set<string>>();
    for (const module of typeof output === 'string' ? [] : output.modules) {
      for (const dependency of module.dependencies) {
        const [from, to] = [unitOf(module.source), unitOf(dependency.resolved)];
        if (from !== to && dependency.resolved.startsWith('src/')) graph.set(from, (graph.get(from) ?? new Set()).add(to));
      }
    }
    const upward: string[] = [];
    for (const [from, targets] of graph) {
      for (const to of targets) {
        const seen = new Set([to]);
        for (const unit of seen) for (const next of graph.get(unit) ?? []) seen.add(next);
        if (seen.has(from)) upward.push(`${from} → ${to}`);
      }
    }

    expect(graph.size).toBeGreaterThan(10);
    expect(upward).toEqual([]);
  });
});
