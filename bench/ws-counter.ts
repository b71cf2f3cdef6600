import WebSocket from 'ws';
import type { OrderLedger } from './http.js';

export interface CountingClient {
  /** Distinct orders whose `order.created` envelope arrived. */
  readonly unique: () => number;
  readonly duplicates: () => number;
  readonly problems: string[];
  close(): void;
}

/** One WebSocket client in the bench process that checks and counts every envelope it receives. */
export async function openCountingClient(url: string, ledger: OrderLedger): Promise<CountingClient> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const seen = new Set<number>();
  let duplicates = 0;
  const problems: string[] = [];
  const problem = (m: string) => {
    if (problems.length < 10) problems.push(m);
  };
  ws.on('message', (data) => {
    const text = String(data);
    try {
      const e = JSON.parse(text) as {
        type?: string;
        schema_version?: number;
        sequence?: number;
        order_id?: number;
        order?: { id?: number; client_email?: string };
      };
      const seq = ledger.seqOf(e.order?.client_email ?? '');
      if (e.type !== 'order.created' || e.schema_version !== 1 || e.sequence !== 1 || seq === undefined || e.order?.id !== e.order_id) {
        return problem(`unexpected envelope ${text.slice(0, 300)}`);
      }
      if (seen.has(seq)) duplicates += 1;
      seen.add(seq);
    } catch {
      problem(`envelope is not JSON: ${text.slice(0, 200)}`);
    }
  });
  ws.on('close', (code) => {
    if (code !== 1000 && code !== 1005) problem(`the WebSocket closed with ${code}`);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { unique: () => seen.size, duplicates: () => duplicates, problems, close: () => ws.close(1000) };
}
