import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';

import { HandlerRegistry } from './handler-registry.service';
import { jobTypesToRun } from './job-types-to-run';
import {
  HandlerOutcome,
  isRunMessage,
  QuarantineAnswerMessage,
  QuarantineReadyMessage,
  QuarantineRunMessage,
  transferError,
} from './quarantine.protocol';
import { WORKER_MODULE_OPTIONS } from './worker.constants';
import { WorkerModuleOptions } from './worker-module-options.interface';

/**
 * The quarantine child's side: runs the jobs its parent worker sends over the IPC channel with
 * the same handlers, and answers with the result or the error. It has no BullMQ worker and no
 * Redis connection, and exits as soon as its parent is gone.
 */
@Injectable()
export class QuarantineHost implements OnApplicationBootstrap {
  private readonly logger = new Logger(QuarantineHost.name);
  // The parent ends this process instead of aborting its handler: the signal never fires.
  private readonly signal = new AbortController().signal;

  constructor(
    @Inject(WORKER_MODULE_OPTIONS) private readonly options: WorkerModuleOptions,
    private readonly handlers: HandlerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    this.handlers.assertExactlyOneHandler(jobTypesToRun(this.options));
    if (!process.send || !process.connected) {
      throw new Error(
        'WORKER_QUARANTINE_CHILD=true: expected to be started by a worker, over an IPC channel; ' +
          'a worker sets it for the process it forks, do not set it yourself',
      );
    }

    // No orphans: a parent that died (even by SIGKILL) closes the channel.
    process.on('disconnect', () => process.exit(0));
    process.on('message', (message: unknown) => void this.onMessage(message));
    this.send({ kind: 'ready' } satisfies QuarantineReadyMessage);
    this.logger.log({ message: 'quarantine process ready', pid: process.pid });
  }

  private async onMessage(message: unknown): Promise<void> {
    if (!isRunMessage(message)) {
      this.logger.warn({ message: 'ignored a message that is not a job to run' });

      return;
    }

    const outcome = await this.runHandler(message);
    this.answer(message.requestId, outcome);
  }

  private async runHandler(message: QuarantineRunMessage): Promise<HandlerOutcome> {
    const fields = { jobType: message.jobType, jobId: message.context.id };
    this.logger.debug({ message: 'job started in quarantine', ...fields });

    try {
      const handler = this.handlers.handlerFor(message.jobType);
      const result = await handler(message.payload, { ...message.context, signal: this.signal });

      return { completed: true, result };
    } catch (error) {
      // The parent bounds and redacts the message and logs the failure, as for any attempt.
      return { completed: false, error: transferError(error) };
    }
  }

  private answer(requestId: number, outcome: HandlerOutcome): void {
    try {
      this.send({ kind: 'answer', requestId, outcome } satisfies QuarantineAnswerMessage);
    } catch (error) {
      // JSON cannot carry every value (a BigInt, a cycle); BullMQ could not store it either.
      const reason = error instanceof Error ? error.message : String(error);
      const unsendable = new Error(`the handler's result cannot leave quarantine: ${reason}`);
      this.send({
        kind: 'answer',
        requestId,
        outcome: { completed: false, error: transferError(unsendable) },
      } satisfies QuarantineAnswerMessage);
    }
  }

  private send(message: QuarantineReadyMessage | QuarantineAnswerMessage): void {
    process.send?.(message);
  }
}
