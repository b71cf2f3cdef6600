import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConsole, launchChromium, screenshot, skipBrowser, watchErrors } from './browser.js';
import { startConsoleService, type ConsoleService } from './service.js';

const FULL = 'console-full-key-1';
const READ = 'console-read-key-1';
const poll = { timeout: 15_000, interval: 50 };

describe.skipIf(skipBrowser)('the console with API keys, in headless Chromium', () => {
  let build: Awaited<ReturnType<typeof buildConsole>>;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let service: ConsoleService;
  beforeAll(async () => {
    build = await buildConsole();
    chromium = await launchChromium();
    service = await startConsoleService(build.dir, { API_KEYS: FULL, API_READ_KEYS: READ });
    expect((await service.app.inject({ method: 'POST', url: '/orders/', headers: { authorization: `Bearer ${FULL}` }, payload: { product_id: 1, quantity: 1, client_name: 'Keyed', client_email: 'keyed@example.com' } })).statusCode).toBe(201);
  });
  afterAll(async () => {
    await chromium?.close();
    await service?.close();
    build?.remove();
  });

  const enterKey = async (page: Page, key: string) => {
    const dialog = page.getByRole('dialog', { name: 'API key' });
    await dialog.waitFor({ timeout: 15_000 });
    await dialog.getByLabel('Key').fill(key);
    await dialog.getByRole('button', { name: 'Use key' }).click();
  };

  it('when keys are on, then the page asks for one, sends it with its calls and its socket, keeps it for the tab, and a read-only key is told why a change is refused', async () => {
    const page = await chromium.context.newPage();
    const errors = watchErrors(page);
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(service.url);
    await enterKey(page, READ);
    await expect.poll(() => page.locator('tr[data-order-id]').count(), poll).toBe(1);
    await expect.poll(() => page.getByTestId('connection').getAttribute('data-state'), poll).toBe('live');
    expect(sockets.at(-1)).toContain(`access_token=${READ}`);
    expect(page.url()).not.toContain(READ);

    await page.locator('tr[data-order-id]').first().click();
    await page.getByTestId('order-detail').getByRole('button', { name: 'Mark Confirmed' }).click();
    await expect.poll(() => page.getByTestId('problem').textContent(), poll).toContain('This key may not do that');
    await screenshot(page, 'read-only-key-refused');

    // Kept for the session: a reload does not ask again.
    await page.reload();
    await expect.poll(() => page.locator('tr[data-order-id]').count(), poll).toBe(1);
    expect(await page.getByRole('dialog').count()).toBe(0);

    await page.getByRole('button', { name: /API key/ }).click();
    await enterKey(page, FULL);
    await page.locator('tr[data-order-id]').first().click();
    await page.getByTestId('order-detail').getByRole('button', { name: 'Mark Confirmed' }).click();
    await expect.poll(() => page.getByTestId('notice').textContent(), poll).toContain('is now Confirmed');
    expect(errors).toEqual([]);
  });
});
