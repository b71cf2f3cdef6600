import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, ROLES, SETTINGS } from '../../src/config.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string) => readFileSync(`${root}/${file}`, 'utf8');

interface ComposeService {
  build?: unknown;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  volumes?: string[];
}

const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, ComposeService> };
const services = Object.entries(compose.services);
/** The services that run this image: the ones built from the Dockerfile. */
const ours = services.filter(([, s]) => s.build !== undefined);

/** Dockerfile instructions, continuation lines joined, comments dropped. */
const instructions = read('Dockerfile')
  .replace(/\\\n\s*/g, ' ')
  .split('\n')
  .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
  .map((line) => {
    const [, keyword, rest] = /^\s*(\w+)\s+(.*)$/.exec(line)!;
    return { keyword: keyword!.toUpperCase(), rest: rest!.trim() };
  });
const stages = instructions.reduce<(typeof instructions)[]>((all, i) => (i.keyword === 'FROM' ? [...all, [i]] : (all.at(-1)!.push(i), all)), []);
const final = stages.at(-1)!;
const last = (keyword: string) => final.filter((i) => i.keyword === keyword).at(-1)?.rest;
/** `ENV A=1 B=2` as a record. */
const dockerEnv = Object.fromEntries(
  instructions.filter((i) => i.keyword === 'ENV').flatMap((i) => [...i.rest.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/^"|"$/g, '')])),
);
/** What compose would substitute for `${NAME:?message}`, as an operator would set it. */
const substitute = (value: string) => String(value).replace(/\$\{(\w+)(?::?[?-][^}]*)?\}/g, (_, name: string) => (name === 'API_KEYS' ? 'a-long-random-key-0123456789' : `<${name}>`));

describe('the deployment files', () => {
  it('when compose.yaml is read, then it runs PostgreSQL, RabbitMQ, MongoDB, two api, one notifier and one changelog, each of ours checked on /readyz', () => {
    const names = services.map(([name]) => name);
    expect(names).toEqual(expect.arrayContaining(['postgres', 'rabbitmq', 'mongodb']));
    expect(compose.services.postgres!.image).toMatch(/^postgres:/);
    expect(compose.services.rabbitmq!.image).toMatch(/^rabbitmq:/);
    expect(compose.services.mongodb!.image).toMatch(/^mongo:/);
    const roles = ours.map(([, s]) => s.command?.[0]).sort();
    expect(roles).toEqual(['api', 'api', 'changelog', 'notifier']);
    for (const [name, s] of ours) {
      expect(ROLES, name).toContain(s.command![0]);
      expect(s.healthcheck?.test.join(' '), name).toContain('/readyz');
      for (const dependency of ['postgres', 'rabbitmq', 'mongodb']) expect(s.depends_on?.[dependency]?.condition, `${name} waits for ${dependency}`).toBe('service_healthy');
    }
    for (const dependency of ['postgres', 'rabbitmq', 'mongodb']) expect(compose.services[dependency]!.healthcheck, dependency).toBeDefined();
  });

  it('when a setting is given in compose.yaml or the Dockerfile, then it is one the service knows, and together they start each role without a configuration error', () => {
    for (const key of Object.keys(dockerEnv)) expect(SETTINGS, `Dockerfile ENV ${key}`).toContain(key);
    for (const [name, s] of ours) {
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, substitute(v)]));
      for (const key of Object.keys(env)) expect(SETTINGS, `${name}: ${key}`).toContain(key);
      const config = loadConfig({ ...dockerEnv, ...env, ROLE: s.command![0] });
      expect(config.ROLE).toBe(s.command![0]);
      expect(config.apiKeys.length, `${name} listens off loopback, so it needs keys`).toBeGreaterThan(0);
      // The URLs name the services compose runs.
      expect(compose.services[new URL(config.DATABASE_URL!).hostname], `${name} DATABASE_URL`).toBeDefined();
      expect(compose.services[new URL(config.RABBITMQ_URL!).hostname], `${name} RABBITMQ_URL`).toBeDefined();
      expect(compose.services[new URL(config.MONGODB_URL!).hostname], `${name} MONGODB_URL`).toBeDefined();
    }
    // Every role declares the change-log queue, and a queue's type is fixed: all must name the same one.
    expect(new Set(ours.map(([, s]) => s.environment?.RABBITMQ_CHANGELOG_QUEUE_TYPE ?? 'classic')).size).toBe(1);
  });

  it('when the Dockerfile is read, then it builds in stages, runs as a user other than root, checks /readyz, and starts with the command docs/operations.md gives', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const user = last('USER');
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user!.split(':')[0]);
    expect(last('HEALTHCHECK')).toContain('/readyz');

    const entrypoint = JSON.parse(last('ENTRYPOINT')!) as string[];
    const command = [...entrypoint, ...(JSON.parse(last('CMD') ?? '[]') as string[])].join(' ');
    expect(command).toBe('node dist/server.js');
    // dist/server.js is what the build makes of src/server.ts; npm start runs the same file.
    expect(existsSync(`${root}/src/server.ts`)).toBe(true);
    expect((JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { outDir: string; rootDir: string } }).compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start).toMatch(/&& node dist\/server\.js$/);
    const operations = read('docs/operations.md');
    for (const [, s] of ours) expect(operations).toContain(`${command} ${s.command![0]}`);
  });

  it('when the image is built, then everything it copies from the project exists and is not excluded by .dockerignore', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const copied = stages
      .flat()
      .filter((i) => i.keyword === 'COPY' && !i.rest.startsWith('--from'))
      .flatMap((i) => i.rest.split(/\s+/).slice(0, -1));
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'web']));
    for (const source of copied) {
      expect(existsSync(`${root}/${source}`), source).toBe(true);
      expect(ignored, source).not.toContain(source.replace(/^\.\//, ''));
    }
  });

  it('when the console is opened through the proxy, then WebSocket traffic goes to the notifier and the rest to both API instances', () => {
    const proxy = compose.services.proxy!;
    expect(proxy.ports).toEqual(expect.arrayContaining([expect.stringMatching(/:8080$/)]));
    const mounted = proxy.volumes!.map((v) => v.split(':')[0]!);
    const caddyfile = read(mounted.find((v) => v.endsWith('Caddyfile'))!.replace(/^\.\//, ''));
    expect(caddyfile).toMatch(/reverse_proxy \/ws\/\* notifier:8001/);
    expect(caddyfile).toMatch(/reverse_proxy api-1:8001 api-2:8001/);
  });
});
