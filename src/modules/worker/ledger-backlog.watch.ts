import { Logger } from '@nestjs/common';
import Redis from 'ioredis';

import { readLedgerBacklogs } from '../queue/ledger-backlog';
import { createRedisClient } from '../queue/redis-connection';

/** The part of a BullMQ worker the watch drives. */
export interface PausableWorker {
  pause(doNotWaitActive?: boolean): Promise<void>;
  resume(): void | Promise<void>;
}

export interface LedgerBacklogWatchOptions {
  redisUrl: string;
  prefix: string;
  /** Unread stream entries at which a queue's worker stops taking jobs; at least 1. */
  limit: number;
  intervalMs: number;
}

export type BacklogStep = 'pause' | 'resume' | 'keep';

/**
 * What to do with a queue's worker, given how many entries of its event stream the ledger has
 * not read. It resumes only once the backlog is down to half the limit, so that it does not
 * flap at the edge. An unknown backlog (no ledger has said how far it read, or Redis lost the
 * key or the stream) never holds work back.
 */
export function backlogStep(
  paused: boolean,
  unread: number | undefined,
  limit: number,
): BacklogStep {
  if (unread === undefined) {
    return paused ? 'resume' : 'keep';
  }
  if (!paused && unread >= limit) {
    return 'pause';
  }
  if (paused && unread <= limit / 2) {
    return 'resume';
  }

  return 'keep';
}

/**
 * Stops a queue's worker from taking jobs while the ledger is too far behind on that queue's
 * event stream, and lets it go on once the ledger has caught up. BullMQ trims each stream to
 * `EVENTS_MAX_LEN` entries; a ledger that fell further behind (starved of CPU by the workers,
 * or down) would find the transitions it had not read gone, and could only repair the final
 * states. Running jobs finish. Producers are refused at a higher limit (`LedgerBacklogGate`).
 */
export class LedgerBacklogWatch {
  private readonly logger = new Logger(LedgerBacklogWatch.name);
  private readonly redis: Redis;
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private failing = false;
  private stopped = false;

  constructor(
    private readonly options: LedgerBacklogWatchOptions,
    private readonly workers: ReadonlyMap<string, PausableWorker>,
  ) {
    this.redis = createRedisClient(options.redisUrl);
  }

  /** The queues whose workers are held back now. */
  get heldQueues(): string[] {
    return [...this.held];
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
  }

  /** Stops watching; workers it holds stay paused (shutdown pauses them all anyway). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.redis.disconnect();
  }

  async check(): Promise<void> {
    if (this.checking) {
      return;
    }

    this.checking = true;
    try {
      const backlogs = await this.readBacklogs();
      this.noteRecovery();
      for (const [queue, unread] of backlogs) {
        await this.apply(queue, unread);
      }
    } catch (error) {
      // Redis is away: the workers cannot take jobs either. Say so once per outage.
      if (!this.failing) {
        this.failing = true;
        this.logger.warn({
          message: 'cannot read the ledger backlog; workers keep their state',
          error: error instanceof Error ? error.message : String(error),
        });
      }
    } finally {
      this.checking = false;
    }
  }

  private readBacklogs(): Promise<Map<string, number | undefined>> {
    return readLedgerBacklogs(this.redis, this.options.prefix, [...this.workers.keys()]);
  }

  private async apply(queue: string, unread: number | undefined): Promise<void> {
    const worker = this.workers.get(queue);
    const step = backlogStep(this.held.has(queue), unread, this.options.limit);
    // A check that was under way when the shutdown began must not resume a worker it paused.
    if (!worker || step === 'keep' || this.stopped) {
      return;
    }

    const fields = { queue, unreadEntries: unread, limit: this.options.limit };
    if (step === 'pause') {
      this.held.add(queue);
      await worker.pause(true);
      this.logger.warn({ message: 'ledger is behind: worker stops taking jobs', ...fields });
    } else {
      this.held.delete(queue);
      await worker.resume();
      this.logger.log({ message: 'ledger caught up: worker takes jobs again', ...fields });
    }
  }

  private noteRecovery(): void {
    if (this.failing) {
      this.failing = false;
      this.logger.log({ message: 'reading the ledger backlog again' });
    }
  }
}
