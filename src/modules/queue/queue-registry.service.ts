import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';

import { JobTypeDefinition } from './job-type.interface';
import { eventsStreamKey, QUEUE_MODULE_OPTIONS } from './queue.constants';
import { QueueModuleOptions } from './queue-module-options.interface';

/**
 * The catalogue of job types and one BullMQ queue per type, so that each type gets its own
 * concurrency, rate and worker pool. Queues are created on first use.
 */
@Injectable()
export class QueueRegistry implements OnApplicationShutdown {
  readonly catalogue: ReadonlyMap<string, JobTypeDefinition>;
  private readonly queues = new Map<string, Queue>();

  constructor(@Inject(QUEUE_MODULE_OPTIONS) readonly options: QueueModuleOptions) {
    this.catalogue = new Map(options.jobTypes.map((definition) => [definition.name, definition]));
  }

  get jobTypes(): string[] {
    return [...this.catalogue.keys()];
  }

  queue(jobType: string): Queue {
    let queue = this.queues.get(jobType);
    if (!queue) {
      queue = new Queue(jobType, {
        // Fail fast while Redis is away: the row is committed and the ledger sends it later.
        connection: {
          url: this.options.redisUrl,
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
        },
        prefix: this.options.prefix,
        streams: { events: { maxLen: this.options.eventsMaxLen } },
      });
      // Errors surface through the calls that failed; without a listener Node would crash.
      queue.on('error', () => undefined);
      this.queues.set(jobType, queue);
    }

    return queue;
  }

  /** The Redis key of one job's hash: `<prefix>:<queue>:<jobId>`. */
  jobKey(jobType: string, bullJobId: string): string {
    return `${this.options.prefix}:${jobType}:${bullJobId}`;
  }

  /** The Redis key of a queue's event stream. */
  eventsKey(jobType: string): string {
    return eventsStreamKey(this.options.prefix, jobType);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    this.queues.clear();
  }
}
