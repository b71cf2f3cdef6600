/** What the console keeps for this browser tab only: the API key and the last event it saw. */
const KEY = 'order-console.key';
const LAST_EVENT = 'order-console.last-event';

const read = (name: string): string | undefined => sessionStorage.getItem(name) ?? undefined;
const write = (name: string, value: string | undefined): void => {
  if (value === undefined) sessionStorage.removeItem(name);
  else sessionStorage.setItem(name, value);
};

export const apiKey = {
  get: () => read(KEY),
  set: (key: string | undefined) => write(KEY, key),
};

export const lastEvent = {
  get: () => read(LAST_EVENT),
  set: (id: string | undefined) => write(LAST_EVENT, id),
};
