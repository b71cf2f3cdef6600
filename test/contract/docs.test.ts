import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, SETTINGS } from '../../src/config.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const PAGES = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), 'bench/README.md'];

/** The page with its fenced blocks blanked (their lines kept, so line numbers hold): what is in them is code, not links or headings. */
const prose = (page: string) => page.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, (block) => block.replace(/[^\n]/g, ''));

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens; a repeated one gets -1, -2 … */
function anchors(page: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, text] of prose(page).matchAll(/^#{1,6} +(.+?) *#* *$/gm)) {
    const slug = text!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

/** Every markdown link and image outside code, with its line. */
function links(page: string): { target: string; line: number }[] {
  return prose(page)
    .split('\n')
    .flatMap((text, i) => [...text.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)].map(([, target]) => ({ target: target!, line: i + 1 })));
}

/** Where a relative link leads, or why it leads nowhere. */
function brokenLink(from: string, target: string): string | undefined {
  const [path = '', anchor] = target.split('#');
  const file = path === '' ? join(root, from) : resolve(dirname(join(root, from)), decodeURIComponent(path));
  if (relative(root, file).startsWith('..')) return 'leads out of the repository';
  if (!existsSync(file)) return `${relative(root, file)} does not exist`;
  if (anchor === undefined) return undefined;
  if (!file.endsWith('.md') || statSync(file).isDirectory()) return `#${anchor} points into ${relative(root, file)}, which has no headings`;
  const known = anchors(readFileSync(file, 'utf8'));
  return known.has(anchor) ? undefined : `${relative(root, file)} has no heading #${anchor} (it has ${[...known].map((a) => `#${a}`).join(', ')})`;
}

describe('the links of the README, docs/ and bench/README.md', () => {
  it('when the pages are listed, then the README, every docs page and the bench README are among them', () => {
    expect(PAGES).toEqual(expect.arrayContaining(['README.md', 'docs/api.md', 'docs/configuration.md', 'bench/README.md']));
  });

  it.each(PAGES)('when %s links to a file of the project, then the file exists, and an #anchor names one of its headings', (page) => {
    const relativeLinks = links(read(page)).filter(({ target }) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
    const broken = relativeLinks.flatMap(({ target, line }) => {
      const why = brokenLink(page, target);
      return why === undefined ? [] : [`line ${line}: ${target}: ${why}`];
    });
    expect(broken).toEqual([]);
  });

  it('when a heading reads like "Node.js 24" or "The console\'s browser tests", then its anchor is GitHub\'s', () => {
    expect(anchors('## Node.js 24\n## The console\'s browser tests\n## `ROLE` and [roles](x.md)\n## Logs\n## Logs\n')).toEqual(
      new Set(['nodejs-24', 'the-consoles-browser-tests', 'role-and-roles', 'logs', 'logs-1']),
    );
  });
});

describe('docs/configuration.md', () => {
  const page = read('docs/configuration.md');
  const table = page.slice(page.indexOf('## Settings'));
  /** Each row of the settings table: the settings it names and the defaults it gives them. */
  const rows = [...table.matchAll(/^\| (`.+?) \| (.+?) \| .+ \|$/gm)].map(([, names, defaults]) => ({
    names: [...names!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map(([, name]) => name!),
    defaults: defaults!.split(', ').map((d) => d.replace(/`/g, '')),
  }));
  const documented = rows.flatMap(({ names }) => names);

  it('when the settings table is read, then it names every setting src/config.ts reads, each once, and no other', () => {
    expect(documented.length).toBeGreaterThan(0);
    expect([...documented].sort()).toEqual([...SETTINGS].sort());
  });

  it('when the page names a setting anywhere, then the service reads it', () => {
    const named = [...prose(page).matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)(?:=[^`]*)?`/g)].map(([, name]) => name!);
    expect(named.length).toBeGreaterThan(documented.length);
    expect(named.filter((name) => !SETTINGS.includes(name))).toEqual([]);
  });

  it('when the service starts with nothing set, then each setting has the default the table gives it ("unset" for none)', () => {
    const config = loadConfig({}) as unknown as Record<string, unknown>;
    const wrong = rows.flatMap(({ names, defaults }) =>
      names.flatMap((name, i) => {
        const documentedDefault = defaults.length === 1 ? defaults[0] : defaults[i];
        const actual = config[name] === undefined ? 'unset' : String(config[name]);
        return documentedDefault === actual ? [] : [`${name}: the table says ${documentedDefault}, the service has ${actual}`];
      }),
    );
    expect(wrong).toEqual([]);
  });
});
