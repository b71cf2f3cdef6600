/** A schema keyword (an OpenAPI extension) for money: at most this many decimal digits. */
export const DECIMAL_PLACES = 'x-decimal-places';

/** Money is exact to the cent. */
export const MONEY_DECIMALS = 2;

/** The decimal digits after the point in the shortest form of `value` (`1e-7` has 7). */
export function decimalPlaces(value: number): number {
  const [mantissa, exponent] = String(Math.abs(value)).split('e') as [string, string?];
  const fraction = mantissa.split('.')[1] ?? '';
  return Math.max(0, fraction.length - Number(exponent ?? 0));
}
