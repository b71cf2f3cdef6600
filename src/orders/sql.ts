/** SQL that renders an order row as the API's JSON, so every reader and every event shows one shape. */

const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export function orderJson(row: string): string {
  return `json_build_object(
    'id', ${row}.id, 'product_id', ${row}.product_id, 'quantity', ${row}.quantity,
    'client_name', ${row}.client_name, 'client_email', ${row}.client_email, 'status', ${row}.status,
    'total_price', ${row}.total_price, 'unit_price', ${row}.unit_price,
    'created_at', ${iso(`${row}.created_at`)}, 'updated_at', ${iso(`${row}.updated_at`)}, 'version', ${row}.version)`;
}

/** The event envelope of DESIGN.md for the order in `row`, whose json is in `json`. */
export function envelopeJson(row: string, json: string, eventId: string, type: string, change?: { from: string; to: string }): string {
  return `json_build_object(
    'id', ${eventId}, 'type', '${type}', 'schema_version', 1, 'occurred_at', ${iso(`${row}.updated_at`)},
    'order_id', ${row}.id, 'sequence', ${row}.version, 'order', ${json}${change ? `, 'change', json_build_object('from', ${change.from}, 'to', ${change.to})` : ''})`;
}
