/**
 * Whether the relay has reason to read the outbox, and its idle wait until it has. New events and sweeps ask
 * for a read and end the wait; a lost session or a failed pass only ask, for the pass that comes next.
 */
export class ReadDemand {
  /** Cleared as each read begins, and by a standby before it asks for the lead. */
  wanted = true;
  /** Ends the idle wait: new events, a sweep, the broker coming back, stop(). */
  private resume: (() => void) | undefined;

  /** New events, or a sweep: read now. */
  ask(): void {
    this.wanted = true;
    this.signal();
  }

  /** Ends the idle wait, if the relay is in it, whether or not a read is wanted. */
  signal(): void {
    this.resume?.();
    this.resume = undefined;
  }

  idle(): Promise<void> {
    return new Promise<void>((resolve) => (this.resume = resolve));
  }
}
