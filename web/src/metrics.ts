/** One sample per series, keyed `name{label="value",...}` as written, and by bare name for series without labels. */
export type Samples = Map<string, number>;

export function parseMetrics(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** The pipeline's health, as the panel shows it; undefined where this process does not run that part. */
export interface Health {
  backlog?: number;
  oldestAgeSeconds?: number;
  relayActive?: boolean;
  broker?: string;
  changeLog?: boolean;
  clients?: number;
  ordersCreated?: number;
  role?: string;
}

export function healthOf(samples: Samples): Health {
  const value = (name: string) => samples.get(name);
  const broker = ['up', 'connecting', 'down'].find((state) => samples.get(`broker_state{state="${state}"}`) === 1);
  const info = [...samples.keys()].find((k) => k.startsWith('service_info{'));
  const num = (name: string) => {
    const v = value(name);
    return v === undefined || Number.isNaN(v) ? undefined : v;
  };
  return {
    backlog: num('outbox_backlog_events'),
    oldestAgeSeconds: num('outbox_oldest_unsent_age_seconds'),
    relayActive: value('outbox_relay_active') === undefined ? undefined : value('outbox_relay_active') === 1,
    broker,
    changeLog: value('changelog_up') === undefined ? undefined : value('changelog_up') === 1,
    clients: num('websocket_clients'),
    ordersCreated: num('orders_created_total'),
    role: info ? /role="([^"]*)"/.exec(info)?.[1] : undefined,
  };
}
