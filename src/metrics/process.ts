import { collectDefaultMetrics, Registry } from 'prom-client';

let shared: Registry | undefined;

/**
 * CPU, memory, handles, GC and event-loop lag: facts about the process, so one registry per process,
 * however many services it runs (tests run dozens; each would otherwise start its own loop monitor).
 */
export function processRegistry(): Registry {
  if (!shared) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared, eventLoopMonitoringPrecision: 20 });
  }
  return shared;
}
