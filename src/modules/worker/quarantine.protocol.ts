import { UnrecoverableError } from 'bullmq';

import { JobContext } from './job-context.interface';

/**
 * The messages a worker and its quarantine child exchange over the IPC channel, as JSON. The
 * worker sends one job at a time and waits for its answer before it sends the next.
 */

/** Child → worker, once, when its handlers are registered and it can take a job. */
export interface QuarantineReadyMessage {
  kind: 'ready';
}

/** Worker → child: run this job's handler. */
export interface QuarantineRunMessage {
  kind: 'run';
  requestId: number;
  jobType: string;
  payload: unknown;
  /** The handler's context, less the abort signal, which cannot cross processes. */
  context: Omit<JobContext, 'signal'>;
}

/** Child → worker: how the handler of request `requestId` ended. */
export interface QuarantineAnswerMessage {
  kind: 'answer';
  requestId: number;
  outcome: HandlerOutcome;
}

export type HandlerOutcome =
  { completed: true; result: unknown } | { completed: false; error: TransferredError };

/** A handler's error as it crosses the process boundary. */
export interface TransferredError {
  name: string;
  message: string;
  stack?: string;
  /** Thrown as an UnrecoverableError (or subclass): BullMQ must fail the job at once. */
  unrecoverable: boolean;
}

/** Handlers may throw anything; make it an error that says what it was. */
export function transferError(thrown: unknown): TransferredError {
  if (!(thrown instanceof Error)) {
    return { name: 'Error', message: `non-Error thrown: ${String(thrown)}`, unrecoverable: false };
  }

  return {
    name: thrown.name,
    message: thrown.message,
    stack: thrown.stack,
    unrecoverable: thrown instanceof UnrecoverableError || thrown.name === 'UnrecoverableError',
  };
}

/**
 * Rebuilds the handler's error in the worker. An unrecoverable one becomes a BullMQ
 * UnrecoverableError again, so that the job fails at once, as it would have in process.
 */
export function restoreError(transferred: TransferredError): Error {
  const error = transferred.unrecoverable
    ? new UnrecoverableError(transferred.message)
    : new Error(transferred.message);
  error.name = transferred.name;
  error.stack = transferred.stack ?? `${transferred.name}: ${transferred.message}`;

  return error;
}

export function isReadyMessage(value: unknown): value is QuarantineReadyMessage {
  return kindOf(value) === 'ready';
}

export function isRunMessage(value: unknown): value is QuarantineRunMessage {
  const message = value as Partial<QuarantineRunMessage>;

  return (
    kindOf(value) === 'run' &&
    typeof message.requestId === 'number' &&
    typeof message.jobType === 'string' &&
    typeof message.context === 'object' &&
    message.context !== null
  );
}

export function isAnswerMessage(value: unknown): value is QuarantineAnswerMessage {
  const message = value as Partial<QuarantineAnswerMessage>;

  return (
    kindOf(value) === 'answer' &&
    typeof message.requestId === 'number' &&
    typeof message.outcome?.completed === 'boolean'
  );
}

function kindOf(value: unknown): unknown {
  return value && typeof value === 'object' ? (value as { kind?: unknown }).kind : undefined;
}
