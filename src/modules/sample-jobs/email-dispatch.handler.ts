import { Injectable } from '@nestjs/common';

import { JobContext } from '../worker/job-context.interface';
import { JobHandler } from '../worker/job-handler.decorator';
import { PayloadReader } from './payload-reader';
import { SAMPLE_JOB, SIMULATED_WORK_MS } from './sample-jobs.constants';
import { performSimulatedWork } from './simulated-work';

/** `{ to: 'user@example.com', subject: 'Welcome', simulateFailures?: number }` */
export interface EmailDispatchPayload {
  to: string;
  subject: string;
}

export interface EmailDispatchResult {
  messageId: string;
  durationMs: number;
}

// Deliberately loose: one `@`, no blanks. The mail server is the real judge of an address.
const EMAIL_ADDRESS = /^[^\s@]+@[^\s@]+$/;

/** Sends (pretends to send) one email. */
@Injectable()
export class EmailDispatchHandler {
  @JobHandler(SAMPLE_JOB.emailDispatch)
  async send(payload: unknown, context: JobContext): Promise<EmailDispatchResult> {
    readEmailDispatchPayload(payload);
    const durationMs = await performSimulatedWork(
      payload,
      context,
      SIMULATED_WORK_MS.email_dispatch,
    );

    return { messageId: `msg-${context.id}-${context.attempt}`, durationMs };
  }
}

export function readEmailDispatchPayload(payload: unknown): EmailDispatchPayload {
  const reader = new PayloadReader(payload);

  return {
    to: reader.matching('to', EMAIL_ADDRESS, 'an email address such as "user@example.com"'),
    subject: reader.string('subject'),
  };
}
