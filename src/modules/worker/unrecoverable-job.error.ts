import { UnrecoverableError } from 'bullmq';

/**
 * Throw from a handler when the job can never succeed (a payload that breaks a business rule):
 * the job fails at once, whatever attempts it has left.
 */
export class UnrecoverableJobError extends UnrecoverableError {
  constructor(message: string) {
    super(message);
    this.name = 'UnrecoverableJobError';
  }
}
