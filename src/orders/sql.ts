/** SQL that renders an order row as the API's JSON, so every reader and every event shows one shape. */

/** Names of the prepared statements the order path runs on every request: PostgreSQL keeps a plan per name and connection. */
// Stryker disable StringLiteral: a name only saves planning; unnamed, each statement answers the same
export const STATEMENT = {
  createOrder: 'create_order',
  getOrder: 'get_order_versioned',
  getOrderState: 'get_order_state',
  changeStatus: 'change_order_status',
  orderCreatedAt: 'order_created_at',
  claimKey: 'claim_idempotency_key',
  readKey: 'read_idempotency_key',
  holdLease: 'hold_idempotency_lease',
} as const;
// Stryker restore StringLiteral

/** A timestamp column as the API writes it: ISO 8601 in UTC, to the millisecond. */
export const isoTime = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const iso = isoTime;

/** row_to_json of a sub-select keeps the columns' order and writes compact JSON. */
const object = (columns: string) => `row_to_json((SELECT r FROM (SELECT ${columns}) AS r))`;

export function orderJson(row: string): string {
  return object(`${row}.id, ${row}.product_id, ${row}.quantity, ${row}.client_name, ${row}.client_email, ${row}.status,
    ${row}.total_price, ${row}.unit_price, ${iso(`${row}.created_at`)} AS created_at,
    ${iso(`${row}.updated_at`)} AS updated_at, ${row}.version`);
}

/** The event envelope (docs/events.md) for the order in `row`, whose json is in `json`. */
export function envelopeJson(row: string, json: string, eventId: string, type: string, change?: { from: string; to: string }): string {
  const changed = change ? `, ${object(`${change.from} AS "from", ${change.to} AS "to"`)} AS change` : '';
  return object(`${eventId} AS id, '${type}' AS type, 1 AS schema_version, ${iso(`${row}.updated_at`)} AS occurred_at,
    ${row}.id AS order_id, ${row}.version AS sequence, ${json} AS "order"${changed}`);
}
