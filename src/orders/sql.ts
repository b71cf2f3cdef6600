/** SQL that renders an order row as the API's JSON, so every reader and every event shows one shape. */

/** A timestamp column as the API writes it: ISO 8601 in UTC, to the millisecond. */
export const isoTime = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const iso = isoTime;

/** row_to_json of a sub-select keeps the columns' order and writes compact JSON. */
const object = (columns: string) => `row_to_json((SELECT r FROM (SELECT ${columns}) AS r))`;

export function orderJson(row: string): string {
  return object(`${row}.id, ${row}.product_id, ${row}.quantity, ${row}.client_name, ${row}.client_email, ${row}.status,
    ${row}.total_price, ${row}.unit_price, ${iso(`${row}.created_at`)} AS created_at, ${iso(`${row}.updated_at`)} AS updated_at, ${row}.version`);
}

/** The event envelope of DESIGN.md for the order in `row`, whose json is in `json`. */
export function envelopeJson(row: string, json: string, eventId: string, type: string, change?: { from: string; to: string }): string {
  return object(`${eventId} AS id, '${type}' AS type, 1 AS schema_version, ${iso(`${row}.updated_at`)} AS occurred_at,
    ${row}.id AS order_id, ${row}.version AS sequence, ${json} AS "order"${change ? `, ${object(`${change.from} AS "from", ${change.to} AS "to"`)} AS change` : ''}`);
}
