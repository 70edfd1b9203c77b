import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';

import {
  LeaseReply,
  LeaseRequest,
  producerLeaseExpiryKey,
  producerLeasesKey,
  renewProducerLeases,
} from './producer-lease';
import {
  ENTRIES_PER_ENQUEUED_JOB,
  PRODUCER_LEASE_CHUNK_SHARE,
  PRODUCER_LEASE_RENEW_MS,
  PRODUCER_LEASE_TTL_MS,
  QUEUE_MODULE_OPTIONS,
} from './queue.constants';
import { LedgerBehindError } from './queue.errors';
import { QueueModuleOptions } from './queue-module-options.interface';
import { createRedisClient, withTimeout } from './redis-connection';

/** This process's share of one queue's room, in stream entries (two per job). */
interface QueueLease {
  /** False while the backlog is unknown: then nothing is held back. */
  known: boolean;
  /**
   * When the last renewal was sent (0: none has answered yet); the lease lives
   * `PRODUCER_LEASE_TTL_MS` from then.
   */
  at: number;
  /** Granted and not yet taken by an enqueue. */
  spare: number;
  /** Taken by enqueues that have not finished. */
  inFlight: number;
  /** Of finished enqueues, in the stream by now (or never to be): reported at the next renewal. */
  landed: number;
  /** The backlog plus every producer's lease at the last renewal, for the refusal's message. */
  estimate: number;
  /** Entries that callers waiting for the next renewal need, and the largest single need. */
  waiting: number;
  largestWaiting: number;
  /** Used since the last renewal: renewals cover only queues in use or holding entries. */
  touched: boolean;
}

/**
 * Refuses new jobs of a queue while the ledger has `producerLedgerBacklogLimit` or more entries
 * of its event stream unread. Workers already stop at a lower limit; this bounds what producers
 * add on top, so that BullMQ's trimming cannot remove events the ledger has not recorded.
 *
 * The bound holds across every API process: each one holds a lease on part of the room left
 * under the limit, granted in Redis by one script that sees the stream, the ledger's progress
 * and every other process's lease at once. An enqueue takes its entries (two per job) from this
 * process's lease without waiting for Redis; only when the lease runs short does it wait for a
 * renewal, which concurrent enqueues share. A renewal also reports the entries that have
 * reached the stream meanwhile, returning them to the room. A lease lapses unless renewed, so a
 * process that died gives its share back. One call larger than the room left passes if there
 * is any room at all: each process overshoots by one call's jobs at most.
 *
 * An unknown backlog (no ledger has published its progress, or Redis does not answer) refuses
 * nothing: Redis being down has its own policy.
 */
@Injectable()
export class LedgerBacklogGate implements OnApplicationShutdown {
  private readonly logger = new Logger(LedgerBacklogGate.name);
  private readonly leases = new Map<string, QueueLease>();
  private readonly processId = randomUUID();
  private renewing: Promise<void> | undefined;
  private renewalTimer: NodeJS.Timeout | undefined;
  private following: Promise<void> | undefined;
  private redis: Redis | undefined;
  private failing = false;
  private closed = false;

  constructor(@Inject(QUEUE_MODULE_OPTIONS) private readonly options: QueueModuleOptions) {}

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.renewalTimer);
    await this.giveBackLeases();
    this.redis?.disconnect();
  }

  /**
   * Admits one enqueue of jobs of the given queues (one entry per job), or refuses it. An
   * admitted enqueue must call `release` with the same queues once it has finished, whatever
   * the outcome.
   * @throws LedgerBehindError for the first of the queues that is too far behind
   */
  async admit(queues: readonly string[]): Promise<void> {
    if (this.options.producerLedgerBacklogLimit === 0) {
      return;
    }

    const needs = entriesByQueue(queues);
    if (this.canTakeNow(needs)) {
      this.take(needs);
      this.renewInBackgroundIfDue(needs);

      return;
    }

    this.waitFor(needs);
    await this.nextRenewal();

    // Checked, then taken, with no await between: concurrent enqueues see each other's entries.
    for (const [queue, need] of needs) {
      const lease = this.leases.get(queue)!;
      if (lease.known && lease.spare < need) {
        throw new LedgerBehindError(queue, lease.estimate, this.options.producerLedgerBacklogLimit);
      }
    }
    this.take(needs);
  }

  /** An admitted enqueue is over: its entries are in Redis, or will never be. */
  release(queues: readonly string[]): void {
    if (this.options.producerLedgerBacklogLimit === 0) {
      return;
    }

    for (const queue of queues) {
      const lease = this.leases.get(queue);
      if (lease) {
        lease.inFlight -= ENTRIES_PER_ENQUEUED_JOB;
        lease.landed += ENTRIES_PER_ENQUEUED_JOB;
      }
    }
    this.scheduleRenewal();
  }

  /**
   * A process that goes quiet still reports its landed entries and gives its spare back soon,
   * rather than hold room from the others until its lease lapses.
   */
  private scheduleRenewal(): void {
    if (this.renewalTimer || this.closed) {
      return;
    }

    this.renewalTimer = setTimeout(() => {
      this.renewalTimer = undefined;
      void this.nextRenewal();
    }, PRODUCER_LEASE_RENEW_MS);
    this.renewalTimer.unref();
  }

  /** Past half its life a lease must be renewed first: the renewal might come too late. */
  private canTakeNow(needs: Map<string, number>): boolean {
    const now = Date.now();
    for (const [queue, need] of needs) {
      const lease = this.leases.get(queue);
      if (!lease || lease.at === 0 || this.waitersQueued(lease)) {
        return false;
      }
      if (lease.known && (lease.spare < need || now - lease.at >= PRODUCER_LEASE_TTL_MS / 2)) {
        return false;
      }
    }

    return true;
  }

  /** Callers already waiting for entries go first. */
  private waitersQueued(lease: QueueLease): boolean {
    return lease.waiting > 0;
  }

  private take(needs: Map<string, number>): void {
    for (const [queue, need] of needs) {
      const lease = this.leases.get(queue)!;
      lease.spare = lease.known ? lease.spare - need : 0;
      lease.inFlight += need;
      lease.touched = true;
    }
  }

  private waitFor(needs: Map<string, number>): void {
    for (const [queue, need] of needs) {
      const lease = this.leases.get(queue) ?? this.newLease(queue);
      lease.waiting += need;
      lease.largestWaiting = Math.max(lease.largestWaiting, need);
      lease.touched = true;
    }
  }

  private newLease(queue: string): QueueLease {
    const lease: QueueLease = {
      known: false,
      at: 0,
      spare: 0,
      inFlight: 0,
      landed: 0,
      estimate: 0,
      waiting: 0,
      largestWaiting: 0,
      touched: true,
    };
    this.leases.set(queue, lease);

    return lease;
  }

  /** Renews early enough that enqueues rarely find the lease short or old. */
  private renewInBackgroundIfDue(needs: Map<string, number>): void {
    if (this.renewing) {
      return;
    }

    const now = Date.now();
    const chunk = this.chunk();
    for (const queue of needs.keys()) {
      const lease = this.leases.get(queue)!;
      if (now - lease.at >= PRODUCER_LEASE_RENEW_MS || (lease.known && lease.spare < chunk / 2)) {
        void this.nextRenewal();

        return;
      }
    }
  }

  /**
   * The renewal that starts after this call: the one in flight took its requests before the
   * caller's. One renewal at a time, so that each sets this process's leases from a consistent
   * count.
   */
  private nextRenewal(): Promise<void> {
    if (this.following) {
      return this.following;
    }
    if (!this.renewing) {
      return this.startRenewal();
    }

    this.following = this.renewing.then(() => {
      this.following = undefined;

      return this.renewing ?? this.startRenewal();
    });

    return this.following;
  }

  private startRenewal(): Promise<void> {
    const renewal = this.renew().finally(() => {
      if (this.renewing === renewal) {
        this.renewing = undefined;
      }
    });
    this.renewing = renewal;

    return renewal;
  }

  private async renew(): Promise<void> {
    const sentAt = Date.now();
    const requests = this.closed ? [] : this.leaseRequests(sentAt);
    if (requests.length === 0) {
      return;
    }

    const replies = await this.sendLeaseRequests(requests);
    for (const { queue, held } of requests) {
      this.applyReply(this.leases.get(queue)!, replies.get(queue), held, sentAt);
    }

    if (requests.some(({ held, wanted }) => held + wanted > 0)) {
      this.scheduleRenewal();
    }
  }

  /**
   * What this process asks of each queue in use. The lease in Redis becomes what it holds plus
   * what is granted, so entries taken or released while the request is under way change nothing
   * there, and a lease that lapsed is restored.
   */
  private leaseRequests(sentAt: number): LeaseRequest[] {
    const chunk = this.chunk();
    const requests: LeaseRequest[] = [];
    for (const [queue, lease] of this.leases) {
      if (!lease.touched && lease.spare + lease.inFlight + lease.landed === 0) {
        continue;
      }

      if (!lease.touched || sentAt - lease.at >= PRODUCER_LEASE_TTL_MS) {
        // Unused since the last renewal: its spare entries go back. Or the lease may have
        // lapsed, and its spare entries gone to others already.
        lease.spare = 0;
      }
      lease.landed = 0;
      const wanted = lease.touched ? Math.max(0, lease.waiting + chunk - lease.spare) : 0;
      requests.push({
        queue,
        held: lease.spare + lease.inFlight,
        wanted,
        least: lease.largestWaiting,
      });
      lease.waiting = 0;
      lease.largestWaiting = 0;
      lease.touched = false;
    }

    return requests;
  }

  private applyReply(
    lease: QueueLease,
    reply: LeaseReply | undefined,
    held: number,
    sentAt: number,
  ): void {
    lease.at = sentAt;
    if (!reply?.known) {
      lease.known = false;
      lease.spare = 0;

      return;
    }

    lease.known = true;
    lease.spare += reply.granted;
    lease.estimate = reply.backlog + reply.heldByOthers + held + reply.granted;
  }

  private async sendLeaseRequests(requests: LeaseRequest[]): Promise<Map<string, LeaseReply>> {
    this.redis ??= createRedisClient(this.options.redisUrl);
    try {
      const replies = await withTimeout(
        renewProducerLeases(
          this.redis,
          this.options.prefix,
          {
            id: this.processId,
            ttlMs: PRODUCER_LEASE_TTL_MS,
            limit: this.options.producerLedgerBacklogLimit,
          },
          requests,
        ),
        this.options.dispatchTimeoutMs,
      );
      this.noteRecovery();

      return replies;
    } catch (error) {
      this.noteFailure(error);

      return new Map();
    }
  }

  /** Entries asked for beyond what waiting callers need: renewals stay rare under load. */
  private chunk(): number {
    const share = this.options.producerLedgerBacklogLimit * PRODUCER_LEASE_CHUNK_SHARE;

    return Math.max(ENTRIES_PER_ENQUEUED_JOB, Math.floor(share));
  }

  /** On shutdown the room this process held returns to the others at once, not at expiry. */
  private async giveBackLeases(): Promise<void> {
    const redis = this.redis;
    if (!redis || this.leases.size === 0 || redis.status !== 'ready') {
      return;
    }

    const pipeline = redis.pipeline();
    for (const queue of this.leases.keys()) {
      pipeline.hdel(producerLeasesKey(this.options.prefix, queue), this.processId);
      pipeline.zrem(producerLeaseExpiryKey(this.options.prefix, queue), this.processId);
    }
    await withTimeout(pipeline.exec(), this.options.dispatchTimeoutMs).catch(() => undefined);
  }

  private noteFailure(error: unknown): void {
    if (!this.failing) {
      this.failing = true;
      this.logger.warn({
        message: 'cannot read the ledger backlog; producers are not held meanwhile',
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  private noteRecovery(): void {
    if (this.failing) {
      this.failing = false;
      this.logger.log({ message: 'reading the ledger backlog again' });
    }
  }
}

/** Stream entries an enqueue adds to each queue: two per job. */
function entriesByQueue(queues: readonly string[]): Map<string, number> {
  const needs = new Map<string, number>();
  for (const queue of queues) {
    needs.set(queue, (needs.get(queue) ?? 0) + ENTRIES_PER_ENQUEUED_JOB);
  }

  return needs;
}
