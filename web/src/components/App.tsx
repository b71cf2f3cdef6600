import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { ApiProblem, get, whenUnauthorized } from '../api';
import { createBus } from '../bus';
import { startLive, type Live, type LiveState } from '../live';
import { apiKey } from '../session';
import type { OrderEvent, Page, Product } from '../types';
import { Catalog } from './Catalog';
import { Feed, type FeedEntry } from './Feed';
import { Header } from './Header';
import { HealthPanel } from './Health';
import { KeyDialog } from './KeyDialog';
import { NewOrder } from './NewOrder';
import { OrderDetail } from './OrderDetail';
import { Orders } from './Orders';
import { ProblemBanner } from './ProblemBanner';

const FEED_SIZE = 40;

export function App() {
  const bus = useMemo(createBus, []);
  const [problem, setProblem] = useState<ApiProblem>();
  const [notice, setNotice] = useState<string>();
  const [askKey, setAskKey] = useState(false);
  // Bumped when the key changes or the live stream lost its place: every panel loads again.
  const [generation, setGeneration] = useState(0);
  const [live, setLive] = useState<{ state: LiveState; detail: string }>({ state: 'connecting', detail: '' });
  const [liveControl, setLiveControl] = useState<Live>();
  const [feed, setFeed] = useState<FeedEntry[]>([]);
  const [selected, setSelected] = useState<number>();
  const [products, setProducts] = useState<Product[]>([]);

  const report = useCallback((error: unknown) => {
    setNotice(undefined);
    setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, 'Something went wrong', String(error), 'client'));
  }, []);
  // Background refreshes that fail for want of a network say so in the connection state, not in a banner.
  const reportQuietly = useCallback(
    (error: unknown) => {
      if (!(error instanceof ApiProblem && error.code === 'network')) report(error);
    },
    [report],
  );
  const announce = useCallback((text: string) => {
    setProblem(undefined);
    setNotice(text);
  }, []);
  const addToFeed = useCallback((entry: FeedEntry) => setFeed((entries) => [entry, ...entries].slice(0, FEED_SIZE)), []);

  const loadProducts = useCallback(() => {
    get<Page<Product>>('/products?limit=200').then((page) => setProducts(page.items), reportQuietly);
  }, [reportQuietly]);

  useEffect(() => whenUnauthorized(() => setAskKey(true)), []);
  useEffect(loadProducts, [loadProducts, generation]);

  useEffect(() => {
    let stockRefresh: number | undefined;
    const control = startLive({
      onEvent: (event: OrderEvent) => {
        bus.publish(event);
        addToFeed({ kind: 'event', event, at: Date.now() });
        // Orders move stock: refresh the catalog once a burst of events is over.
        clearTimeout(stockRefresh);
        stockRefresh = window.setTimeout(loadProducts, 500);
      },
      onState: (state, detail) => {
        setLive({ state, detail });
        // Connected again: a banner about the network being away is over.
        if (state === 'live') setProblem((p) => (p?.code === 'network' ? undefined : p));
      },
      onResume: (after) =>
        addToFeed({ kind: 'notice', text: `Resumed after event ${after.slice(0, 8)}…: replaying what this page missed`, at: Date.now() }),
      onGap: () => {
        addToFeed({ kind: 'notice', text: 'Too much was missed to replay: reloaded the orders', at: Date.now() });
        setGeneration((g) => g + 1);
      },
    });
    setLiveControl(control);
    return () => {
      clearTimeout(stockRefresh);
      control.stop();
    };
  }, [bus, addToFeed, loadProducts]);

  const saveKey = (key: string | undefined) => {
    apiKey.set(key);
    setAskKey(false);
    setProblem(undefined);
    setGeneration((g) => g + 1);
    liveControl?.restart();
  };

  return (
    <div class="shell">
      <Header live={live} hasKey={apiKey.get() !== undefined} onKey={() => setAskKey(true)} />
      <ProblemBanner problem={problem} notice={notice} onDismiss={() => (setProblem(undefined), setNotice(undefined))} />
      <main class="layout">
        <div class="column primary">
          <Orders
            key={`orders-${generation}`}
            subscribe={bus.subscribe}
            report={report}
            selected={selected}
            onSelect={setSelected}
            products={products}
          />
          {selected !== undefined && (
            <OrderDetail
              key={`detail-${selected}-${generation}`}
              id={selected}
              products={products}
              subscribe={bus.subscribe}
              report={report}
              announce={announce}
              onClose={() => setSelected(undefined)}
            />
          )}
        </div>
        <div class="column secondary">
          <HealthPanel key={`health-${generation}`} live={live.state} />
          <NewOrder products={products} report={report} announce={announce} onCreated={setSelected} />
          <Feed entries={feed} onSelect={setSelected} />
          <Catalog products={products} report={report} announce={announce} reload={loadProducts} />
        </div>
      </main>
      {askKey && <KeyDialog current={apiKey.get()} onSave={saveKey} onCancel={() => setAskKey(false)} />}
    </div>
  );
}
