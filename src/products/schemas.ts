import { Type, type Static } from '@sinclair/typebox';
import { DECIMAL_PLACES, MONEY_DECIMALS } from '../http/money.js';
import { PRINTABLE, VISIBLE } from '../http/validation.js';

export const Price = Type.Number({
  minimum: 0,
  maximum: 99_999_999.99,
  // Not multipleOf 0.01: validators divide in binary floating point and refuse 164017.89.
  [DECIMAL_PLACES]: MONEY_DECIMALS,
  description: 'in the currency unit, at most two decimals (checked on the decimal digits, not by division)',
});
/** `null` means unlimited. */
export const Stock = Type.Union([Type.Integer({ minimum: 0, maximum: 2_147_483_647 }), Type.Null()]);

export const Product = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    price: Type.Number({ [DECIMAL_PLACES]: MONEY_DECIMALS, description: 'written with exactly two decimals' }),
    stock: Stock,
  },
  { $id: 'Product' },
);
export type Product = Static<typeof Product>;

const Name = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: PRINTABLE,
  allOf: [{ pattern: VISIBLE }],
  description: 'trimmed before it is checked; at least one visible character',
});

export const CreateProductBody = Type.Object(
  { name: Name, price: Price, stock: Type.Optional(Stock) },
  { additionalProperties: false, examples: [{ name: 'Gadget', price: 25.5, stock: 100 }] },
);
export type CreateProductBody = Static<typeof CreateProductBody>;

export const UpdateProductBody = Type.Object(
  { name: Type.Optional(Name), price: Type.Optional(Price), stock: Type.Optional(Stock) },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateProductBody = Static<typeof UpdateProductBody>;

export const ProductParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) });

export const ListProductsQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 100 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type ListProductsQuery = Static<typeof ListProductsQuery>;

export const ProductPage = Type.Object({ items: Type.Array(Type.Ref(Product)), next_cursor: Type.Union([Type.String(), Type.Null()]) });
