import type { OrderEvent } from './types';

export type Listener = (event: OrderEvent) => void;
/** Subscribes to live events; returns the unsubscribe. */
export type Subscribe = (listener: Listener) => () => void;

/** Fans live events out to the panels that show them. */
export function createBus(): { publish: Listener; subscribe: Subscribe } {
  const listeners = new Set<Listener>();
  return {
    publish: (event) => {
      for (const listener of listeners) listener(event);
    },
    subscribe: (listener) => {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
