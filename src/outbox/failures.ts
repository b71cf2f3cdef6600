export class BrokerUnavailable extends Error {
  override name = 'BrokerUnavailable';
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
