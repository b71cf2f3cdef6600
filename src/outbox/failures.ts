/** The broker is not taking publishes: down, still connecting, or blocked (a memory or disk alarm). */
export class BrokerUnavailable extends Error {
  override name = 'BrokerUnavailable';
  constructor(readonly state: string) {
    super(`RabbitMQ is ${state}`);
  }
}

/** A failure of the relay's own database work, which ends its session (and so its lock). */
export class DatabaseFailure extends Error {
  override name = 'DatabaseFailure';
  constructor(override readonly cause: unknown) {
    super(`outbox database work failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

export async function onDatabase<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw new DatabaseFailure(error);
  }
}
