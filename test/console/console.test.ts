import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { startConsoleService, type ConsoleService } from './service.js';
import { buildConsole, launchChromium, screenshot, skipBrowser, watchErrors } from './browser.js';

const live = (page: Page) => page.getByTestId('connection');
const row = (page: Page, id: number) => page.locator(`tr[data-order-id="${id}"]`);
const feedEvents = (page: Page) => page.locator('[data-testid="feed"] li[data-event-id]');
const poll = { timeout: 15_000, interval: 50 };

describe.skipIf(skipBrowser)('the console in headless Chromium', () => {
  let build: Awaited<ReturnType<typeof buildConsole>>;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let service: ConsoleService;
  let proxy: TcpProxy;
  let operator: Page;
  let viewer: Page;
  let viewerUrl: string;
  const errors: string[] = [];
  let orderId: number;

  beforeAll(async () => {
    build = await buildConsole();
    chromium = await launchChromium();
    service = await startConsoleService(build.dir);
    // The viewer reaches the service through a proxy the test can cut, as a network would.
    proxy = await startTcpProxy({ host: '127.0.0.1', port: (service.app.server.address() as AddressInfo).port });
    viewerUrl = `http://127.0.0.1:${proxy.port}/`;
    operator = await chromium.context.newPage();
    viewer = await chromium.context.newPage();
    errors.push(...[operator, viewer].map(watchErrors).flat());
  });
  afterAll(async () => {
    await chromium?.close();
    await proxy?.close();
    await service?.close();
    build?.remove();
  });
  afterEach(() => expect(errors).toEqual([]));

  it('when an operator creates an order through the form, then it appears live on a second page, moves there when its status changes, and its history shows both events', async () => {
    await operator.goto(service.url);
    await viewer.goto(viewerUrl);
    for (const page of [operator, viewer]) await expect.poll(() => live(page).getAttribute('data-state'), poll).toBe('live');

    const form = operator.getByRole('region', { name: 'New order' });
    await form.getByLabel('Product').selectOption({ label: 'Demo widget · 100.00' });
    await form.getByLabel('Quantity').fill('3');
    await form.getByLabel('Client name').fill('Ada Lovelace');
    await form.getByLabel('Client email').fill('ada@example.com');
    await form.getByRole('button', { name: 'Create order' }).click();

    const notice = operator.getByTestId('notice');
    await expect.poll(() => notice.textContent(), poll).toMatch(/Order #\d+ created: 300\.00/);
    orderId = Number(/#(\d+)/.exec((await notice.textContent()) ?? '')![1]);
    await expect.poll(() => row(viewer, orderId).textContent(), poll).toContain('Ada Lovelace');
    expect(await row(viewer, orderId).textContent()).toContain('Pending');
    await expect.poll(() => feedEvents(viewer).count(), poll).toBe(1);

    const detail = operator.getByTestId('order-detail');
    await detail.getByRole('button', { name: 'Mark Confirmed' }).click();
    await expect.poll(() => row(viewer, orderId).textContent(), poll).toContain('Confirmed');
    await expect.poll(() => detail.getByTestId('history').locator('li').allTextContents(), poll).toEqual([
      expect.stringContaining('Created'),
      expect.stringContaining('Pending → Confirmed'),
    ]);
    expect((await service.app.inject({ method: 'GET', url: `/orders/${orderId}` })).json()).toMatchObject({ status: 'Confirmed', total_price: 300 });
    await screenshot(operator, 'operator-after-confirm');
    await screenshot(viewer, 'viewer-live');
  });

  it('when the socket is cut, then the page shows it is reconnecting, and once back it catches up with ?after= on every change it missed', async () => {
    const sockets: string[] = [];
    viewer.on('websocket', (ws) => sockets.push(ws.url()));
    const seen = await feedEvents(viewer).count();

    proxy.cut();
    await expect.poll(() => live(viewer).getAttribute('data-state'), poll).toBe('reconnecting');
    expect((await service.app.inject({ method: 'PATCH', url: `/orders/${orderId}`, payload: { status: 'Shipped' } })).statusCode).toBe(200);
    const missed = await service.app.inject({ method: 'POST', url: '/orders/', payload: { product_id: 1, quantity: 1, client_name: 'Grace Hopper', client_email: 'grace@example.com' } });
    expect(missed.statusCode).toBe(201);
    await screenshot(viewer, 'viewer-cut');

    await proxy.restore();
    await expect.poll(() => live(viewer).getAttribute('data-state'), poll).toBe('live');
    await expect.poll(() => row(viewer, orderId).textContent(), poll).toContain('Shipped');
    await expect.poll(() => row(viewer, missed.json<{ id: number }>().id).textContent(), poll).toContain('Grace Hopper');
    // Exactly the two missed events were replayed: none lost, none twice.
    await expect.poll(() => feedEvents(viewer).count(), poll).toBe(seen + 2);
    expect(sockets.at(-1)).toMatch(/[?&]after=[0-9a-f-]{36}/);
    expect(await viewer.getByTestId('feed').textContent()).toContain('replaying what this page missed');
    await screenshot(viewer, 'viewer-caught-up');
  });

  it('when the page is loaded again after changes it did not see, then it resumes from the last event it had and replays exactly those', async () => {
    await viewer.goto('about:blank');
    expect((await service.app.inject({ method: 'PATCH', url: `/orders/${orderId}`, payload: { status: 'Delivered' } })).statusCode).toBe(200);
    const sockets: string[] = [];
    viewer.on('websocket', (ws) => sockets.push(ws.url()));

    await viewer.goto(viewerUrl);
    await expect.poll(() => live(viewer).getAttribute('data-state'), poll).toBe('live');
    await expect.poll(() => feedEvents(viewer).allTextContents(), poll).toEqual([expect.stringContaining('Shipped → Delivered')]);
    expect(sockets[0]).toMatch(/[?&]after=[0-9a-f-]{36}/);
    expect(await row(viewer, orderId).textContent()).toContain('Delivered');
  });

  it('when the API refuses a change, then the page shows the problem title and detail, not JSON; catalog prices and stock can be edited', async () => {
    const catalog = operator.getByRole('region', { name: 'Catalog' });
    const print = catalog.getByRole('form', { name: 'Limited edition print' });
    await print.getByLabel('Price').fill('12.50');
    await print.getByLabel('Stock').fill('2');
    await print.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => operator.getByTestId('notice').textContent(), poll).toContain('saved');
    const product = (await service.app.inject({ method: 'GET', url: '/products/3' })).json<{ price: number; stock: number }>();
    expect(product).toMatchObject({ price: 12.5, stock: 2 });

    const form = operator.getByRole('region', { name: 'New order' });
    await expect.poll(() => form.getByLabel('Product').textContent(), poll).toContain('12.50 · 2 left');
    await form.getByLabel('Product').selectOption({ label: 'Limited edition print · 12.50 · 2 left' });
    await form.getByLabel('Quantity').fill('5');
    await form.getByLabel('Client name').fill('Too Many');
    await form.getByLabel('Client email').fill('many@example.com');
    await form.getByRole('button', { name: 'Create order' }).click();

    const problem = operator.getByTestId('problem');
    await expect.poll(() => problem.textContent(), poll).toContain('Not enough stock');
    expect(await problem.textContent()).toContain('Product 3 has fewer than 5 in stock.');
    expect(await problem.textContent()).not.toContain('{');
    await screenshot(operator, 'operator-problem');
  });

  it('when the pipeline panel polls /metrics, then it shows the backlog, its age, the broker, the change log and the WebSocket clients', async () => {
    await operator.reload();
    const health = operator.getByTestId('health');
    await expect.poll(() => health.getByTestId('health-backlog').textContent(), poll).toContain('0 events');
    expect(await health.getByTestId('health-oldest').textContent()).toContain('none');
    expect(await health.getByTestId('health-broker').textContent()).toContain('up');
    expect(await health.getByTestId('health-changelog').textContent()).toContain('up');
    await expect.poll(async () => Number(/\d+/.exec((await health.getByTestId('health-clients').textContent()) ?? '')?.[0]), { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
  });

  it('when orders move through every status, then the console shows them with the pipeline beside them (the screenshot in docs/operations.md)', async () => {
    const clients = [['Alan Turing', 'Shipped'], ['Katherine Johnson', 'Cancelled'], ['Edsger Dijkstra', 'Confirmed'], ['Barbara Liskov', 'Pending']] as const;
    for (const [name, status] of clients) {
      const email = `${name.split(' ')[0]!.toLowerCase()}@example.com`;
      const created = await service.app.inject({ method: 'POST', url: '/orders/', payload: { product_id: 2, quantity: name.length % 4 + 1, client_name: name, client_email: email } });
      const id = created.json<{ id: number }>().id;
      const path = { Pending: [], Confirmed: ['Confirmed'], Shipped: ['Confirmed', 'Shipped'], Cancelled: ['Cancelled'] }[status];
      for (const to of path) expect((await service.app.inject({ method: 'PATCH', url: `/orders/${id}`, payload: { status: to } })).statusCode).toBe(200);
    }
    // Arrived live: the rows and the feed were filled by the WebSocket, not by a reload.
    await expect.poll(() => operator.locator('tr[data-order-id]').count(), poll).toBeGreaterThanOrEqual(6);
    await expect.poll(() => feedEvents(operator).count(), poll).toBeGreaterThanOrEqual(8);
    await row(operator, orderId).click();
    await expect.poll(() => operator.getByTestId('history').locator('li').count(), poll).toBe(4);
    await expect.poll(() => operator.getByTestId('health-clients').textContent(), poll).toMatch(/[1-9]/);
    await screenshot(operator, 'overview');
  });

  it('when the screen is as narrow as a phone, then nothing scrolls sideways and an order can still be placed', async () => {
    const phone = await chromium.context.newPage();
    errors.push(...watchErrors(phone));
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(service.url);
    await expect.poll(() => live(phone).getAttribute('data-state'), poll).toBe('live');
    expect(await phone.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    // The top bar's controls fit beside the title rather than running off the screen.
    for (const control of [live(phone), phone.getByRole('button', { name: /API key/ })]) {
      const box = (await control.boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    await screenshot(phone, 'phone-top', false);
    const form = phone.getByRole('region', { name: 'New order' });
    await form.getByLabel('Client name').fill('Pocket Client');
    await form.getByLabel('Client email').fill('pocket@example.com');
    await form.getByRole('button', { name: 'Create order' }).click();
    await expect.poll(() => phone.getByTestId('notice').textContent(), poll).toMatch(/Order #\d+ created/);
    expect(await phone.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await screenshot(phone, 'phone');
    await phone.close();
  });
});
