import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decimalPlaces } from '../../src/http/money.js';
import { startTestService, type TestService } from '../helpers/service.js';

describe('money in the catalog', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ database: 'pglite' });
  });
  afterAll(() => service?.close());

  const create = (price: unknown) => service.app.inject({ method: 'POST', url: '/products', payload: { name: 'Lamp', price } });

  it('when a price has at most two decimals, then it is taken exactly, however binary floating point divides it', async () => {
    for (const price of [19.99, 0.29, 0.07, 164017.89, 99_999_999.99, 0, 12, 1.5]) {
      const response = await create(price);
      expect(response.statusCode, `${price}: ${response.body}`).toBe(201);
      expect(response.body).toContain(`"price":${price.toFixed(2)}`);
    }
  });

  it('when a price has more than two decimals, then it is 422 naming price, never rounded', async () => {
    for (const price of [0.001, 19.999, 1e-7, 5e-324, 100.005]) {
      const response = await create(price);
      expect(response.statusCode, String(price)).toBe(422);
      expect(response.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'price', message: 'must have at most 2 decimals' }] });
    }
  });

  it('when decimal places are counted, then exponent forms count too', () => {
    expect([0, 1, 1.5, 19.99, 1e-7, 1.25e-3, 1e21, -0.05].map(decimalPlaces)).toEqual([0, 0, 1, 2, 7, 5, 0, 2]);
  });
});
