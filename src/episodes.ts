import type { Logger } from './logger.js';

export interface Episodes {
  /**
   * A failure of `kind`: the first of an episode is logged (at `level`, with `fields`), later ones are only counted.
   * Returns true when this one opened the episode.
   */
  failed(kind: string, fields: object, message: string, level?: 'error' | 'warn'): boolean;
  /** Ends the episode of `kind`, if one is open, with a line that says how many failures it had and for how long. */
  recovered(kind: string): void;
  /** Kinds with an episode open now. */
  open(): string[];
  /** Ends every episode without a line (the process is stopping). */
  close(): void;
}

interface Episode {
  readonly startedAt: number;
  failures: number;
  quiet: NodeJS.Timeout;
}

/**
 * One log line per episode, not per request: a flood of the same failure (a full disk, a database away)
 * would otherwise write a line per request. An episode ends when its owner says it recovered, or after
 * `quietMs` without a failure of its kind. A logger without `error` gets those episodes at warn.
 */
export function createEpisodes(
  logger: Pick<Logger, 'info' | 'warn'> & Partial<Pick<Logger, 'error'>>,
  quietMs = 10_000,
  now: () => number = Date.now,
): Episodes {
  const episodes = new Map<string, Episode>();

  function end(kind: string, how: string): void {
    const episode = episodes.get(kind);
    if (!episode) return;
    clearTimeout(episode.quiet);
    episodes.delete(kind);
    logger.info(
      { episode: kind, failures: episode.failures, seconds: Math.round((now() - episode.startedAt) / 100) / 10 },
      `${kind}: ${how}`,
    );
  }

  const quietTimer = (kind: string) => {
    const timer = setTimeout(() => end(kind, `no failure for ${quietMs / 1000} s`), quietMs);
    timer.unref();
    return timer;
  };

  return {
    failed(kind, fields, message, level = 'error') {
      const episode = episodes.get(kind);
      if (episode) {
        episode.failures += 1;
        clearTimeout(episode.quiet);
        episode.quiet = quietTimer(kind);
        return false;
      }
      episodes.set(kind, { startedAt: now(), failures: 1, quiet: quietTimer(kind) });
      const line = `${message} (further failures of this kind are counted, not logged, until it ends)`;
      if (level === 'error' && logger.error) logger.error({ ...fields, episode: kind }, line);
      else logger.warn({ ...fields, episode: kind }, line);
      return true;
    },
    recovered(kind) {
      end(kind, 'recovered');
    },
    open: () => [...episodes.keys()],
    close() {
      for (const episode of episodes.values()) clearTimeout(episode.quiet);
      episodes.clear();
    },
  };
}
