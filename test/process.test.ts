import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { orderInput } from './helpers/factories.js';
import { runServer, spawnService } from './helpers/process.js';

const dirs: string[] = [];
const dataDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'order-service-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const postOrder = (url: string, body = orderInput()) =>
  fetch(`${url}/orders/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('the service process on its embedded defaults', () => {
  it('when it is killed with SIGKILL right after acknowledging orders, then every acknowledged order is there after a restart', async () => {
    const DATA_DIR = dataDir();
    const first = await spawnService({ DATA_DIR });
    const acknowledged: Record<string, unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      const response = await postOrder(first.url);
      expect(response.status).toBe(201);
      acknowledged.push((await response.json()) as Record<string, unknown>);
    }
    await first.kill('SIGKILL');

    const second = await spawnService({ DATA_DIR });
    try {
      for (const order of acknowledged) {
        const response = await fetch(`${second.url}/orders/${order.id}`);
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual(order);
      }
      // Events the dead process had not shipped yet are shipped by the new one.
      const last = acknowledged.at(-1)!;
      await expect
        .poll(async () => ((await (await fetch(`${second.url}/orders/${last.id}/history`)).json()) as { type: string }[]).map((e: { type: string }) => e.type), { timeout: 30_000 })
        .toEqual(['order.created']);
    } finally {
      await second.kill('SIGTERM');
    }
  });

  it('when SIGTERM arrives with requests in flight, then they finish, the process exits 0 and the data opens cleanly again', async () => {
    const DATA_DIR = dataDir();
    const service = await spawnService({ DATA_DIR });
    const inFlight = Array.from({ length: 30 }, () => postOrder(service.url).then((r) => r.status).catch(() => 'refused'));
    await new Promise((r) => setTimeout(r, 5));
    const code = await service.kill('SIGTERM');
    expect(code).toBe(0);
    const statuses = await Promise.all(inFlight);
    // Each request either completed or was refused before it started; none was cut off half-way with a 5xx.
    expect(statuses.every((s) => s === 201 || s === 'refused' || s === 503)).toBe(true);
    expect(service.output()).toMatch(/stopped/);

    const again = await spawnService({ DATA_DIR });
    try {
      const created = statuses.filter((s) => s === 201).length;
      const list = (await (await fetch(`${again.url}/orders?limit=200`)).json()) as { items: unknown[] };
      expect(list.items).toHaveLength(created);
    } finally {
      await again.kill('SIGTERM');
    }
  });

  it('when a setting is invalid, then it does not start and the message names the setting', async () => {
    const result = await runServer({ PORT: 'abc', DATA_DIR: dataDir() });
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/invalid setting PORT/);
    const open = await runServer({ HOST: '0.0.0.0', DATA_DIR: dataDir() });
    expect(open.code).toBe(1);
    expect(open.output).toMatch(/API_KEYS/);
  });
});
